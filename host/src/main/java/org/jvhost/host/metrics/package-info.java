/**
 * The optional metrics endpoint: device and queue counters, build, process and JVM metrics, collected
 * into the official Prometheus client's registry at scrape time and served over a small non-blocking
 * HTTP server bound to loopback only.
 */
package org.jvhost.host.metrics;
