/**
 * The engine's only door to the kernel: every native call (mmap, eventfd, epoll, memfd) goes through
 * {@link org.jvhost.engine.sys.LinuxSys}, and errno becomes a {@link org.jvhost.engine.sys.NativeException}
 * there and nowhere else.
 */
package org.jvhost.engine.sys;
