package org.jvhost.host.metrics;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.server.DeviceSnapshot;
import org.jvhost.engine.server.DeviceSnapshot.QueueSnapshot;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** How device snapshots are named and typed on the metrics endpoint. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DeviceMetricsTest {

    /** A net device with one error outside its queues, two queues with errors, and counters of its own. */
    private static final DeviceSnapshot NIC = new DeviceSnapshot("vm1-nic0", true, 2, false, 0, 1,
            Map.of("rx_frames", 5L, "tap_write_failed", 3L, "tx_dropped", 2L),
            List.of(new QueueSnapshot(0, true, 7, 6, 2, Map.of("rx_dropped_no_buffer", 4L)),
                    new QueueSnapshot(1, true, 9, 8, 4, Map.of("tx_bytes", 600L, "ring_resets_total", 1L))));

    private static String scrape() throws Exception {
        Exposition e = Exposition.of(JvhostRegistry.create(() -> List.of(new DeviceMetrics.Device("net", NIC)), "abc1234"));
        return new String(e.render("text/plain").bytes(), StandardCharsets.UTF_8);
    }

    @Test
    void deviceTypeCountersGetFamiliesOfTheirOwnNotALabel() throws Exception {
        String text = scrape();
        assertFalse(text.contains("counter=\""), text);
        assertTrue(text.contains("# TYPE jvhost_net_tap_write_failed_total counter\n"), text);
        assertTrue(text.contains("jvhost_net_tap_write_failed_total{device=\"vm1-nic0\"} 3.0\n"), text);
        assertTrue(text.contains("jvhost_net_queue_ring_resets_total{device=\"vm1-nic0\",queue=\"1\"} 1.0\n"), text);
        assertTrue(text.contains("jvhost_device_frames_total{device=\"vm1-nic0\",direction=\"rx\"} 5.0\n"), text);
        assertTrue(text.contains("jvhost_device_drops_total{device=\"vm1-nic0\",direction=\"tx\",reason=\"unspecified\"} 2.0\n"),
                text);
        assertTrue(text.contains(
                "jvhost_queue_drops_total{device=\"vm1-nic0\",direction=\"rx\",queue=\"0\",reason=\"no_buffer\"} 4.0\n"),
                text);
    }

    /** Strict mode's and fault injection's counters (issue 16: a CI may scrape them instead of asking ctl). */
    @Test
    void strictModeAndFaultCountersAreFamiliesOfTheDeviceType() throws Exception {
        DeviceSnapshot lo = new DeviceSnapshot("loopback@/tmp/lo.sock", true, 2, false, 0, 0,
                Map.of("spec_violations", 2L, "spec_violation.ring_before_mem_table", 1L,
                        "spec_violation.kick_while_suppressed", 1L, "extra_kicks", 3L, "faults_injected", 1L),
                List.of());
        Exposition e = Exposition.of(JvhostRegistry.create(() -> List.of(new DeviceMetrics.Device("loopback", lo)), "abc1234"));
        String text = new String(e.render("text/plain").bytes(), StandardCharsets.UTF_8);
        String dev = "{device=\"loopback@/tmp/lo.sock\"}";
        assertTrue(text.contains("jvhost_loopback_spec_violations_total" + dev + " 2.0\n"), text);
        assertTrue(text.contains("jvhost_loopback_spec_violation_ring_before_mem_table_total" + dev + " 1.0\n"), text);
        assertTrue(text.contains("jvhost_loopback_spec_violation_kick_while_suppressed_total" + dev + " 1.0\n"), text);
        assertTrue(text.contains("jvhost_loopback_extra_kicks_total" + dev + " 3.0\n"), text);
        assertTrue(text.contains("jvhost_loopback_faults_injected_total" + dev + " 1.0\n"), text);
    }

    @Test
    void errorsAreCountedOnceBetweenTheDeviceAndItsQueues() throws Exception {
        String text = scrape();
        assertTrue(text.contains("jvhost_device_errors_total{device=\"vm1-nic0\"} 1.0\n"), text);
        assertTrue(text.contains("jvhost_queue_errors_total{device=\"vm1-nic0\",queue=\"0\"} 2.0\n"), text);
        assertTrue(text.contains("jvhost_queue_errors_total{device=\"vm1-nic0\",queue=\"1\"} 4.0\n"), text);
    }

    @Test
    void theTypeIsAnInfoMetricAndBuildProcessAndJvmMetricsAreThere() throws Exception {
        String text = scrape();
        assertTrue(text.contains("jvhost_device_info{device=\"vm1-nic0\",type=\"net\"} 1\n"), text);
        assertTrue(text.contains("jvhost_device_connected{device=\"vm1-nic0\"} 1.0\n"), text);
        assertTrue(text.contains("\njvhost_build_info{commit=\"abc1234\",java_version=\"" + Runtime.version()
                + "\",spi_version=\""), text);
        for (String family : List.of("process_resident_memory_bytes gauge", "process_open_fds gauge",
                "jvm_threads_current gauge", "jvm_gc_collection_seconds summary")) {
            assertTrue(text.contains("# TYPE " + family + "\n"), family + " in\n" + text);
        }
    }

    @Test
    void aScraperAskingForProtobufGetsTheTextFormatWhichIsBuiltIn() throws Exception {
        Exposition e = Exposition.of(JvhostRegistry.create(() -> List.of(new DeviceMetrics.Device("net", NIC)), "abc1234"));
        Exposition.Body body = e.render("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                + "encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1");
        assertTrue(body.contentType().startsWith("text/plain; version=0.0.4"), body.contentType());
        assertTrue(new String(body.bytes(), StandardCharsets.UTF_8).contains("jvhost_devices 1.0\n"));
    }
}
