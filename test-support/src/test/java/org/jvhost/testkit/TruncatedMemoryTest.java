package org.jvhost.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.jvhost.engine.server.Host;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
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
@Timeout(60)
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

    @Test
    void shrunkGuestMemoryFailsThatDeviceAloneAndTheHostGoesOn() throws Exception {
        victim = ring("victim", false);
        bystander = ring("bystander", true);
        victim.kickAndAssertServed(victim.ping());

        victim.ping(); // published while the memory is still there
        LinuxSys.truncate(victim.ram.memfd(), 0); // the front-end pulls the memory from under the ring
        victim.fe.kick(0); // the worker's next read of the ring faults (SIGBUS -> InternalError)
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!host.status(victim.ctx).failed() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertTrue(host.status(victim.ctx).failed(), "the faulting device is marked failed");

        for (int i = 0; i < 3; i++) { // the same worker thread keeps serving the other device
            bystander.kickAndAssertServed(bystander.ping());
        }
        assertFalse(host.status(bystander.ctx).failed());
    }
}
