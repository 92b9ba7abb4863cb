/**
 * Build-time tools of the Debian package: the man pages and the shell completion, generated from the
 * command line's picocli model so that they cannot drift from {@code --help}.
 */
package org.jvhost.packaging;
