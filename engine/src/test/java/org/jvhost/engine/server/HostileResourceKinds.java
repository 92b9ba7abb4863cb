package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.SingleMemRegionLayout;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.testkit.ScriptedFrontend;

/**
 * The resource attacks of the hostile-front-end fuzz ({@link HostileFrontendFuzzTest}): each kind is one
 * connection to the target device that tries to exhaust or break something the host shares with other
 * devices, and checks the host's answer. Every fd a kind creates is named "fuzz" (memfds) or is an
 * eventfd, so the test can count exactly what the host kept.
 */
enum HostileResourceKinds {
    /** More than the spec's 8 fds on one message, half of them past junixsocket's old 60-fd buffer. */
    TOO_MANY_FDS {
        @Override
        void run(HostileFrontendFuzzTest t, Path socket, Random random) throws Exception {
            int count = random.nextBoolean() ? 61 + random.nextInt(253 - 60) : 9 + random.nextInt(52);
            int fd = LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC);
            try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
                int[] fds = new int[count];
                Arrays.fill(fds, fd);
                fe.send(FrontendRequest.GET_FEATURES.code(), MessageHeader.VERSION, null, fds);
                assertTrue(fe.isClosedByPeer(3000), "a message with " + count + " fds closes its connection");
            } finally {
                LinuxSys.closeQuietly(fd);
            }
        }
    },
    /** Guest memory that cannot be sealed, truncated to nothing under a running ring, then kicked. */
    TRUNCATED_MEMORY {
        @Override
        void run(HostileFrontendFuzzTest t, Path socket, Random random) throws Exception {
            LiveRing victim = t.target;
            victim.connect(socket, false);
            try {
                victim.kickAndAssertServed(victim.ping());
                LinuxSys.truncate(victim.ram.memfd(), 0);
                victim.fe.kick(0); // the device's next read of the ring faults
                long deadline = System.nanoTime() + 3_000_000_000L;
                while (!t.host.status(victim.ctx).failed() && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                assertTrue(t.host.status(victim.ctx).failed(), "the device whose memory shrank has failed");
            } finally {
                victim.close();
            }
        }
    },
    /**
     * ADD_MEM_REG of huge sparse memfds (they cost the sender nothing) until the host says no, and then,
     * while they stay mapped, another device's memory table.
     */
    SPARSE_MEMORY_STORM {
        @Override
        void run(HostileFrontendFuzzTest t, Path socket, Random random) throws Exception {
            long size = 1L << 39; // 512 GiB of holes
            int fd = LinuxSys.memfdCreate("fuzz", LinuxSys.MFD_CLOEXEC);
            try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
                LinuxSys.truncate(fd, size);
                fe.setOwner();
                fe.setFeatures(fe.getFeatures());
                fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.CONFIGURE_MEM_SLOTS);
                int accepted = 0;
                for (int i = 0; i < 509; i++) {
                    RegionSpec r = new RegionSpec(i * size, size, 0x7f00_0000_0000L + i * size, 0);
                    ScriptedFrontend.Reply ack = fe.call(FrontendRequest.ADD_MEM_REG, SingleMemRegionLayout.of(r), fd);
                    if (ack.u64() != 0) {
                        break;
                    }
                    accepted++;
                }
                assertTrue(accepted * size <= 4L << 40, accepted + " sparse 512 GiB regions were mapped for one "
                        + "connection, past the default --max-guest-memory of 4 TiB");
                assertTrue(fe.getFeatures() != 0, "the connection answers after the refusal");
                // while the storm's regions stay mapped, another device still gets its memory
                Path spacer = socket.resolveSibling("spacer.sock");
                t.spacer.connect(spacer, true).kickAndAssertServed(t.spacer.ping());
                t.spacer.close();
            } finally {
                LinuxSys.closeQuietly(fd);
            }
        }
    },
    /** SET_VRING_KICK on a started ring with an fd epoll cannot watch (a memfd), many times. */
    KICK_SWITCH_TO_MEMFD {
        @Override
        void run(HostileFrontendFuzzTest t, Path socket, Random random) throws Exception {
            LiveRing victim = t.target;
            victim.connect(socket, true);
            int memfd = LinuxSys.memfdCreate("fuzz", LinuxSys.MFD_CLOEXEC);
            try {
                for (int i = 0; i < 50 + random.nextInt(150); i++) {
                    ScriptedFrontend.Reply ack = victim.fe.call(FrontendRequest.SET_VRING_KICK, U64Layout.of(0), memfd);
                    assertTrue(ack.u64() != 0, "a kick fd epoll cannot watch is refused");
                }
                victim.kickAndAssertServed(victim.ping()); // still on its old kick fd
            } finally {
                LinuxSys.closeQuietly(memfd);
                victim.close();
            }
        }
    },
    /**
     * Front-ends that send requests with NEED_REPLY and never read a reply (reconnecting whenever the host
     * cuts one off), while the bystander (same control loop) makes control round trips: those stay fast,
     * because a reply the socket has no room for never holds the loop.
     */
    NEVER_READ_REPLIES {
        @Override
        void run(HostileFrontendFuzzTest t, Path socket, Random random) throws Exception {
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            java.util.concurrent.atomic.AtomicReference<ScriptedFrontend> current = new java.util.concurrent.atomic.AtomicReference<>();
            Thread flood = new Thread(() -> {
                while (!stop.get()) {
                    try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
                        current.set(fe);
                        while (!stop.get()) {
                            fe.send(FrontendRequest.GET_FEATURES.code(), MessageHeader.VERSION | MessageHeader.NEED_REPLY, null);
                        }
                    } catch (IOException cutOff) {
                        // the host cut it off (or the test closed it): come back
                    }
                }
            }, "fuzz-never-read");
            flood.start();
            try {
                // round trips for 1.5 s: a loop that waits for a hostile reply (the old 200 ms stall
                // per unread reply) makes every round trip that arrives meanwhile wait as long
                int slow = 0;
                long worst = 0;
                long end = System.nanoTime() + 1_500_000_000L;
                while (System.nanoTime() < end) {
                    long t0 = System.nanoTime();
                    assertTrue(t.bystander.fe.getFeatures() != 0);
                    long rtt = System.nanoTime() - t0;
                    worst = Math.max(worst, rtt);
                    slow += rtt > 100_000_000L ? 1 : 0;
                }
                assertTrue(slow <= 1, slow + " of the bystander's control round trips took over 100 ms (the "
                        + "slowest " + worst / 1_000_000 + " ms) while front-ends on its control loop never read replies");
            } finally {
                stop.set(true);
                ScriptedFrontend fe = current.get();
                if (fe != null) {
                    fe.close(); // unblocks a send waiting for room
                }
                flood.join(10_000);
                assertFalse(flood.isAlive(), "the flooding thread ended");
            }
        }
    };

    abstract void run(HostileFrontendFuzzTest t, Path socket, Random random) throws Exception;

}
