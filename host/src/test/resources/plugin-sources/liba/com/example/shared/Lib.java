package com.example.shared;

/** Two plugins bundle this class with different bodies; each must see its own. */
public final class Lib {
    private Lib() { }

    /** A method, not a constant: javac would copy a constant into the caller. */
    public static String name() { return "shared lib A"; }
}
