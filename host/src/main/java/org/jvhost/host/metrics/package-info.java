/**
 * The optional metrics endpoint: device and queue counters in the Prometheus text format over HTTP,
 * bound to loopback only.
 */
package org.jvhost.host.metrics;
