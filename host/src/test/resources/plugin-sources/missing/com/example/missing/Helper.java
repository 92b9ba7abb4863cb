package com.example.missing;

/** Compiled, but left out of the plugin jar: the provider needs it and cannot find it. */
public final class Helper {
}
