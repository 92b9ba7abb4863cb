package org.jvhost.device.loopback;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.TimeUnit;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.virtio.VirtioNet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 10, unit = TimeUnit.SECONDS)
class LoopbackProviderTest {
    private final LoopbackProvider provider = new LoopbackProvider();

    /** The options a host would pass: the declared defaults, overridden by {@code given}. */
    private DeviceOptions options(String... given) {
        Map<String, String> values = new HashMap<>();
        for (OptionSpec o : provider.options()) {
            values.put(o.name(), o.defaultValue());
        }
        for (int i = 0; i < given.length; i += 2) {
            values.put(given[i], given[i + 1]);
        }
        return new DeviceOptions(values);
    }

    @Test
    void isRegisteredForServiceLoader() {
        assertTrue(ServiceLoader.load(DeviceProvider.class).stream()
                .anyMatch(p -> p.type() == LoopbackProvider.class));
    }

    @Test
    void defaultsGiveOnePairWithMergeableBuffers() throws InvalidOptionException {
        VhostUserDevice device = provider.create(options(), () -> "loopback@test");
        assertEquals(2, device.maxQueues());
        assertTrue((device.features() & VirtioNet.F_MRG_RXBUF) != 0);
        byte[] mac = new byte[6];
        device.readConfig(VirtioNet.CONFIG_MAC, mac);
        assertEquals(0x02, mac[0], "a locally administered default MAC");
        assertEquals(0x01, mac[5]);
    }

    @Test
    void optionsAreApplied() throws InvalidOptionException {
        VhostUserDevice device = provider.create(
                options("mac", "52:54:00:ab:cd:ef", "queues", "8", "mrg_rxbuf", "off"), () -> "x");
        assertEquals(16, device.maxQueues());
        assertEquals(0, device.features() & VirtioNet.F_MRG_RXBUF);
        byte[] mac = new byte[6];
        device.readConfig(VirtioNet.CONFIG_MAC, mac);
        assertEquals((byte) 0xef, mac[5]);
    }

    @Test
    void badValuesNameTheKey() {
        assertRejected("queues", "0", "between 1 and 8");
        assertRejected("queues", "9", "between 1 and 8");
        assertRejected("queues", "two", "not an integer");
        assertRejected("mac", "52:54:00:12:34", "expected a MAC");
        assertRejected("mac", "03:00:00:00:00:01", "multicast");
        assertRejected("mrg_rxbuf", "sometimes", "expected on or off");
    }

    private void assertRejected(String key, String value, String why) {
        InvalidOptionException e = assertThrows(InvalidOptionException.class,
                () -> provider.create(options(key, value), () -> "x"));
        assertEquals(key, e.key());
        assertTrue(e.getMessage().contains(key + "=" + value) && e.getMessage().contains(why), e.getMessage());
    }
}
