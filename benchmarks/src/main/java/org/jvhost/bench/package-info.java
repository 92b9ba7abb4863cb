/**
 * JMH microbenchmarks of jvhost's per-packet paths: the split virtqueue round trip, chain-to-chain copy,
 * the loopback device's TX-to-RX reflection, and the call eventfd write. Guest memory is a memfd mapped
 * the way the host maps a front-end's memory, so native addresses and real mmap windows are measured,
 * not heap buffers. Build with {@code mvn -B -pl benchmarks -am -DskipTests package}, run
 * {@code java -jar benchmarks/target/benchmarks.jar}; results and their interpretation are in
 * {@code BENCHMARKS.md}.
 */
package org.jvhost.bench;
