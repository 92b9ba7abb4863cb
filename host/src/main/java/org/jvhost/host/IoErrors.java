package org.jvhost.host;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.attribute.UserPrincipalNotFoundException;

/**
 * I/O failures in words for people: the file and what is wrong with it, never a Java class name
 * ({@code NoSuchFileException: /x} becomes {@code /x: no such file or directory}).
 */
public final class IoErrors {
    private IoErrors() {
    }

    /** What went wrong, naming the file (or user/group) involved. */
    public static String describe(IOException e) {
        if (e instanceof UserPrincipalNotFoundException u) {
            return "no user or group named '" + u.getName() + "' on this system";
        }
        if (e instanceof FileSystemException f && f.getFile() != null) {
            String what = e instanceof NoSuchFileException ? "no such file or directory"
                    : e instanceof AccessDeniedException ? "permission denied"
                    : e instanceof FileAlreadyExistsException ? "already exists"
                    : e instanceof NotDirectoryException ? "not a directory"
                    : e instanceof DirectoryNotEmptyException ? "directory not empty"
                    : f.getReason() != null ? f.getReason() : "I/O error";
            return f.getFile() + (f.getOtherFile() != null ? " -> " + f.getOtherFile() : "") + ": " + what;
        }
        return e.getMessage() != null ? e.getMessage() : "I/O error";
    }
}
