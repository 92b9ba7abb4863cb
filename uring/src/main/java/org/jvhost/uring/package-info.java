/**
 * A small io_uring library for device plugins: {@link org.jvhost.uring.IoUring} sets up a ring, fills
 * submission entries and reaps completions, over JNA; {@link org.jvhost.uring.NativeFile} opens the file
 * descriptor a ring's reads and writes name. It is not part of the SPI (which stays free of JNA): a plugin
 * that uses it bundles it, with JNA, into its own jar.
 */
package org.jvhost.uring;
