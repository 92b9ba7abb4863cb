/** What every layer of the host shares: {@link org.jvhost.host.IoErrors} turns I/O failures into words. */
package org.jvhost.host;
