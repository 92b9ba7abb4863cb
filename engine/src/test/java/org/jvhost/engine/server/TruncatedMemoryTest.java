package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A front-end that shrinks guest memory under a running ring (java-stack §7: DPDK's back-end dies with
 * SIGBUS on this). Sealable memfds are sealed, so the shrink is refused; an unsealable one shrinks, the
 * device's next access faults, and that device alone fails while the host and other devices go on.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // a hung worker must fail, not hang, the test
class TruncatedMemoryTest {
    @TempDir
    Path dir;
    Host host;
    LiveRing victim;
    LiveRing bystander;

    @BeforeEach
    void start() {
        host = new Host(1); // one worker: the faulting device and the bystander share its thread
    }

    @AfterEach
    void stop() throws Exception {
        for (LiveRing r : new LiveRing[] {victim, bystander}) {
            if (r != null) {
                r.close();
            }
        }
        host.close();
    }

    private LiveRing ring(String name, boolean sealable) throws Exception {
        Path socket = dir.resolve(name + ".sock");
        return new LiveRing(host, name, socket).connect(socket, sealable);
    }

    @Test
    void aSealableMemfdCannotBeShrunkOnceMapped() throws Exception {
        victim = ring("sealed", true);
        NativeException e = assertThrows(NativeException.class, () -> LinuxSys.truncate(victim.ram.memfd(), 0));
        assertEquals(NativeException.EPERM, e.errno(), "F_SEAL_SHRINK refuses the shrink");
        victim.kickAndAssertServed(victim.ping());
    }

    /**
     * Issue 9, finding 2: the first fault was contained, but the victim's next kick touched the vanished
     * ring again after the device had failed, and HotSpot raised that fault at the worker's next
     * epoll_wait, outside every guard: the worker thread died with every queue of every device on it.
     */
    @Test
    void repeatedlyShrunkGuestMemoryFailsThatDeviceAloneAndItsWorkerGoesOn() throws Exception {
        bystander = ring("bystander", true);
        Path victimSocket = dir.resolve("victim.sock");
        victim = new LiveRing(host, "victim", victimSocket);
        for (int round = 0; round < 3; round++) {
            victim.connect(victimSocket, false); // a fresh connection, device and memory each round
            victim.kickAndAssertServed(victim.ping());
            assertFalse(host.status(victim.ctx).failed(), "round " + round + ": a reset clears the failure");

            victim.ping(); // published while the memory is still there
            LinuxSys.truncate(victim.ram.memfd(), 0); // the front-end pulls the memory from under the ring
            for (int kick = 0; kick < 5; kick++) {
                victim.fe.kick(0); // each makes the worker look at a ring that is gone
                awaitFailed(victim);
                bystander.kickAndAssertServed(bystander.ping()); // the same worker thread serves the other device
            }
            victim.close(); // the front-end leaves; its device is reset
        }
        assertFalse(host.status(bystander.ctx).failed(), "the bystander never faulted");
        assertTrue(threadAlive("jvhost-worker-0"), "the one worker thread is still alive");
        assertEquals(bystander.driver.availIdx(), bystander.fe.getVringBase(0),
                "GET_VRING_BASE, which the worker must run, stops the bystander's ring where it stood");
    }

    /**
     * A ring the worker polls (no kicks) vanishes: the fault is raised while the worker looks at that
     * ring, so it fails that device, not the one the worker serves next on the same thread.
     */
    @Test
    void aPolledRingThatVanishesFailsItsOwnDeviceAndNotTheNextOneServed() throws Exception {
        host.close();
        host = new Host(1, 2_000_000); // busy queues stay polled for 2 s
        victim = ring("victim", false);
        bystander = ring("bystander", true);
        victim.kickAndAssertServed(victim.ping()); // found work: the worker now polls the victim's ring
        bystander.kickAndAssertServed(bystander.ping());
        LinuxSys.truncate(victim.ram.memfd(), 0);
        awaitFailed(victim); // no kick needed: the poller reads the vanished avail->idx itself
        for (int i = 0; i < 5; i++) {
            bystander.kickAndAssertServed(bystander.ping());
        }
        assertFalse(host.status(bystander.ctx).failed(), "the fault is not blamed on the device served next");
        assertTrue(threadAlive("jvhost-worker-0"), "the one worker thread is still alive");
    }

    /**
     * A ring started over memory that shrank before SET_VRING_KICK: building the queue reads the ring on
     * the control thread, and that fault is a refusal of the request, not an error escaping into the
     * control loop (which left the request without a reply).
     */
    @Test
    void aRingStartedOverShrunkMemoryIsRefusedAndTheControlLoopGoesOn() throws Exception {
        bystander = ring("bystander", true);
        Path socket = dir.resolve("victim.sock");
        victim = new LiveRing(host, "victim", socket);
        for (int round = 0; round < 3; round++) {
            victim.open(socket, ProtocolFeatures.REPLY_ACK, false);
            victim.fe.setMemTable();
            LinuxSys.truncate(victim.ram.memfd(), 0);
            ScriptedFrontend.RefusedException e = assertThrows(ScriptedFrontend.RefusedException.class,
                    victim::startRing, "round " + round);
            assertTrue(e.getMessage().contains("SET_VRING_KICK"), e.getMessage());
            assertTrue(victim.fe.getFeatures() != 0, "the connection still answers");
            victim.close();
            bystander.kickAndAssertServed(bystander.ping());
            assertTrue(bystander.fe.getFeatures() != 0, "the bystander's control loop answers");
        }
    }

    private void awaitFailed(LiveRing r) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!host.status(r.ctx).failed() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(host.status(r.ctx).failed(), "the faulting device is marked failed");
    }

    private static boolean threadAlive(String name) {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals(name) && t.isAlive());
    }
}
