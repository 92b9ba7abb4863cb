package org.jvhost.device.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 10, unit = TimeUnit.SECONDS)
class NetProviderTest {
    private final NetProvider provider = new NetProvider();

    /** The options a host would pass: the declared defaults, overridden by {@code given}. */
    private DeviceOptions options(String... given) {
        Map<String, String> values = new HashMap<>();
        for (OptionSpec o : provider.options()) {
            if (o.defaultValue() != null) {
                values.put(o.name(), o.defaultValue());
            }
        }
        for (int i = 0; i < given.length; i += 2) {
            values.put(given[i], given[i + 1]);
        }
        return new DeviceOptions(values);
    }

    private InvalidOptionException rejected(String... given) {
        return assertThrows(InvalidOptionException.class, () -> NetConfig.from(options(given)));
    }

    @Test
    void isRegisteredForServiceLoader() {
        assertTrue(ServiceLoader.load(DeviceProvider.class).stream().anyMatch(p -> p.type() == NetProvider.class));
        assertEquals("net", provider.type());
    }

    @Test
    void validOptionsBecomeAConfig() throws InvalidOptionException {
        NetConfig c = NetConfig.from(options("tap", "tap0", "mac", "52:54:00:12:34:56", "mtu", "9000", "queues", "4"));
        assertEquals("tap0", c.tapName());
        assertNull(c.tapFds());
        assertEquals(9000, c.mtu());
        assertEquals(4, c.queuePairs());
        assertEquals(0x56, c.mac()[5]);
        NetConfig fds = NetConfig.from(options("tapfd", "5:6", "queues", "2"));
        assertEquals(6, fds.tapFds()[1]);
        assertEquals(0, fds.mtu(), "no mtu: F_MTU is not offered");
        assertNull(fds.mac(), "no mac: F_MAC is not offered");
        assertEquals(NetConfig.Uring.AUTO, fds.uring(), "io_uring when the kernel allows it, by default");
    }

    @Test
    void uringTakesAutoOnOrOff() throws InvalidOptionException {
        assertEquals(NetConfig.Uring.OFF, NetConfig.from(options("tap", "tap0", "uring", "off")).uring());
        assertEquals(NetConfig.Uring.ON, NetConfig.from(options("tap", "tap0", "uring", "on")).uring());
        InvalidOptionException bad = rejected("tap", "tap0", "uring", "yes");
        assertEquals("uring", bad.key());
        assertTrue(bad.getMessage().contains("uring=yes") && bad.getMessage().contains("auto, on or off"),
                bad.getMessage());
    }

    @Test
    void aTapOrTapFdIsRequiredAndNotBoth() {
        assertTrue(rejected().getMessage().contains("tap=NAME"));
        InvalidOptionException both = rejected("tap", "tap0", "tapfd", "5");
        assertEquals("tapfd", both.key());
        assertTrue(both.getMessage().contains("exclude each other"));
    }

    @Test
    void badValuesNameTheirKey() {
        assertEquals("tap", rejected("tap", "this-name-is-too-long").key());
        assertTrue(rejected("tap", "a/b").getMessage().contains("'/'"));
        assertEquals("queues", rejected("tap", "t", "queues", "9").key());
        assertEquals("queues", rejected("tap", "t", "queues", "0").key());
        assertEquals("mtu", rejected("tap", "t", "mtu", "67").key());
        assertEquals("mac", rejected("tap", "t", "mac", "01:00:5e:00:00:01").key(), "multicast MAC");
        InvalidOptionException count = rejected("tapfd", "5", "queues", "2");
        assertTrue(count.getMessage().contains("one per queue pair"), count.getMessage());
        assertTrue(rejected("tapfd", "5:x", "queues", "2").getMessage().contains("'x'"));
        assertTrue(rejected("tapfd", "5:5", "queues", "2").getMessage().contains("twice"));
        assertTrue(rejected("tapfd", "-1").getMessage().contains("'-1'"));
    }

    @Test
    void aTapThatCannotBeCreatedNamesTheCapabilityNeeded() {
        String eperm = LinuxTap.setIffError("tap7", TapNatives.EPERM, 2);
        assertTrue(eperm.contains("CAP_NET_ADMIN"), eperm);
        assertTrue(eperm.contains("ip tuntap add dev tap7 mode tap vnet_hdr multi_queue"), eperm);
        assertTrue(LinuxTap.setIffError("tap7", TapNatives.EBUSY, 1).contains("already attached"));
        assertTrue(LinuxTap.setIffError("tap7", TapNatives.EINVAL, 2).contains("multi_queue"));
    }

    @Test
    void anFdThatIsNotATapIsRefusedWithTheReason() throws Exception {
        int fd = TapNatives.open("/dev/null", TapNatives.O_RDWR | TapNatives.O_CLOEXEC);
        try {
            InvalidOptionException e = assertThrows(InvalidOptionException.class,
                    () -> provider.create(options("tapfd", Integer.toString(fd)), () -> "net@test"));
            assertEquals("tapfd", e.key());
            assertTrue(e.getMessage().contains("tapfd " + fd + " is not a TAP"), e.getMessage());
        } finally {
            TapNatives.close(fd);
        }
        InvalidOptionException closed = assertThrows(InvalidOptionException.class,
                () -> provider.create(options("tapfd", "987654"), () -> "net@test"));
        assertTrue(closed.getMessage().contains("EBADF"), closed.getMessage());
    }
}
