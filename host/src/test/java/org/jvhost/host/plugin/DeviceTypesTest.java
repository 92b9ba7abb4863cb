package org.jvhost.host.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Iterator;
import java.util.List;
import java.util.ServiceConfigurationError;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 10, unit = TimeUnit.SECONDS)
class DeviceTypesTest {

    @Test
    void findsTheBuiltInLoopbackThroughServiceLoader() {
        DeviceTypes types = DeviceTypes.load(getClass().getClassLoader());
        assertEquals("loopback", types.resolve("loopback").name());
        assertEquals(List.of(), types.problems());
    }

    @Test
    void unknownTypeListsKnownTypes() {
        DeviceTypes types = DeviceTypes.from(List.<DeviceProvider>of(new Named("alpha"), new Named("beta")).iterator());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> types.resolve("gamma"));
        assertEquals("unknown device type 'gamma'; known types: alpha, beta", e.getMessage());
    }

    @Test
    void aTypeClaimedTwiceIsRefusedNamingBothClasses() {
        DeviceTypes types = DeviceTypes.from(List.<DeviceProvider>of(new Named("net"), new Other("net"), new Named("ok")).iterator());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> types.resolve("net"));
        assertTrue(e.getMessage().contains(Named.class.getName() + " from built-in and " + Other.class.getName()
                + " from built-in"), e.getMessage());
        assertEquals(List.of("ok"), types.names());
        assertEquals(1, types.problems().size());
        assertTrue(types.problems().get(0).contains(Other.class.getName()));
    }

    @Test
    void aProviderForAnotherSpiMajorIsRefused() {
        DeviceProvider future = new Named("future") {
            @Override
            public int spiMajorVersion() {
                return SpiVersion.MAJOR + 1;
            }
        };
        DeviceTypes types = DeviceTypes.from(List.of(future, new Named("now")).iterator());
        assertEquals(List.of("now"), types.names());
        assertEquals(List.of("built-in: refused " + future.getClass().getName() + ": it needs device SPI "
                + (SpiVersion.MAJOR + 1) + ".x, this host has SPI " + SpiVersion.string()), types.problems());
    }

    @Test
    void aBadTypeNameIsRefused() {
        DeviceTypes types = DeviceTypes.from(List.<DeviceProvider>of(new Named("Has Space"), new Named("fine")).iterator());
        assertEquals(List.of("fine"), types.names());
        assertTrue(types.problems().get(0).contains("'Has Space'"), types.problems().toString());
    }

    @Test
    void aProviderThatFailsToLoadIsReportedAndOthersStillLoad() {
        List<Supplier<DeviceProvider>> entries = List.of(
                () -> new Named("first"),
                () -> {
                    throw new ServiceConfigurationError("org.example.Broken: Provider could not be instantiated",
                            new IllegalStateException("no native library"));
                },
                () -> new Named("third"));
        DeviceTypes types = DeviceTypes.from(serviceLoaderLike(entries));
        assertEquals(List.of("first", "third"), types.names());
        assertEquals(1, types.problems().size());
        String problem = types.problems().get(0);
        assertTrue(problem.contains("org.example.Broken") && problem.contains("no native library"), problem);
    }

    @Test
    void aProviderWhoseTypeThrowsIsReportedByClassName() {
        DeviceProvider broken = new Named("x") {
            @Override
            public String type() {
                throw new IllegalStateException("boom");
            }
        };
        DeviceTypes types = DeviceTypes.from(List.of(broken, new Named("y")).iterator());
        assertEquals(List.of("y"), types.names());
        assertTrue(types.problems().get(0).contains(broken.getClass().getName()), types.problems().toString());
    }

    @Test
    void aProviderWhoseDescriptionThrowsIsRefusedAtLoadNotWhileListing() {
        DeviceProvider broken = new Named("x") {
            @Override
            public String description() {
                throw new UnsupportedOperationException("not yet");
            }
        };
        DeviceTypes types = DeviceTypes.from(List.of(broken, new Named("y")).iterator());
        assertEquals(List.of("y"), types.names());
        assertTrue(types.problems().get(0).contains("not yet"), types.problems().toString());
    }

    @Test
    void anEntryTheIteratorCannotGetPastIsReportedOnce() {
        Iterator<DeviceProvider> stuck = new Iterator<>() {
            @Override
            public boolean hasNext() {
                throw new ServiceConfigurationError("Error reading configuration file");
            }

            @Override
            public DeviceProvider next() {
                throw new AssertionError("not called");
            }
        };
        assertEquals(1, DeviceTypes.from(stuck).problems().size());
    }

    @Test
    void resolveReturnsTheProvider() {
        Named alpha = new Named("alpha");
        assertSame(alpha, DeviceTypes.from(List.<DeviceProvider>of(alpha).iterator()).resolve("alpha").provider());
    }

    /** An iterator whose next() throws like ServiceLoader's does for a broken entry, then goes on. */
    private static Iterator<DeviceProvider> serviceLoaderLike(List<Supplier<DeviceProvider>> entries) {
        Iterator<Supplier<DeviceProvider>> it = entries.iterator();
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return it.hasNext();
            }

            @Override
            public DeviceProvider next() {
                return it.next().get();
            }
        };
    }

    static class Named implements DeviceProvider {
        private final String type;

        Named(String type) {
            this.type = type;
        }

        @Override
        public String type() {
            return type;
        }

        @Override
        public String description() {
            return "test provider " + type;
        }

        @Override
        public List<OptionSpec> options() {
            return List.of();
        }

        @Override
        public VhostUserDevice create(DeviceOptions options, DeviceContext context) {
            throw new AssertionError("not called");
        }

        @Override
        public int spiMajorVersion() {
            return org.jvhost.spi.SpiVersion.MAJOR;
        }
    }

    static final class Other extends Named {
        Other(String type) {
            super(type);
        }
    }
}
