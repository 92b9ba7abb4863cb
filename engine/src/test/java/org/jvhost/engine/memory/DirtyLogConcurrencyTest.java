package org.jvhost.engine.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.jvhost.engine.sys.LinuxSys;

/**
 * Several rings (queue pairs, each on its own worker) set bits in one log while the front-end harvests
 * and clears it, as QEMU's dirty-log sync does during a migration. No bit a ring set may be lost: a lost
 * bit is a page QEMU never sends again, and a guest that runs on the destination with a stale page.
 * DPDK's non-atomic OR lost bits this way (commit bb77d555d4) and migrations stopped converging at about
 * 1 Mpps with several queue pairs. With a plain read-modify-write in {@link DirtyLog#or} this test failed
 * (checked by hand, 2026-12-06: 35 bits lost in the first round).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DirtyLogConcurrencyTest {
    private static final VarHandle WORD = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final int WORDS = 4096;
    private static final int RINGS = 4;
    private static final int ROUNDS = 20;

    @Test
    void ringsSettingBitsWhileTheFrontEndClearsThemLoseNone() throws Exception {
        long size = WORDS * 8L;
        int fd = LinuxSys.memfdCreate("jvhost-test-log", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
        LinuxSys.truncate(fd, size);
        long address = LinuxSys.mmap(size, LinuxSys.PROT_READ | LinuxSys.PROT_WRITE, LinuxSys.MAP_SHARED, fd, 0);
        DirtyLog log = DirtyLog.map(fd, size, 0); // takes the fd
        try {
            ByteBuffer frontEnd = LinuxSys.buffer(address, size);
            for (int round = 0; round < ROUNDS; round++) {
                long[] harvested = race(log, frontEnd);
                long lost = 0;
                for (long bits : harvested) {
                    lost += 64 - Long.bitCount(bits);
                }
                assertEquals(0, lost, "bits lost in round " + round);
            }
        } finally {
            log.unmap();
            LinuxSys.munmap(address, size);
        }
    }

    /**
     * Each ring sweeps every word {@code 64 / RINGS} times, setting a bit no one else sets (ring r, sweep
     * s: bit {@code RINGS * s + r}), all rings over the same words at about the same time; meanwhile the
     * front-end swaps words to zero and keeps what it took. Returns the harvest plus what is left: every
     * word must have all 64 bits.
     */
    private static long[] race(DirtyLog log, ByteBuffer frontEnd) throws InterruptedException {
        long[] harvested = new long[WORDS];
        CountDownLatch go = new CountDownLatch(1);
        AtomicBoolean done = new AtomicBoolean();
        List<Thread> rings = new ArrayList<>();
        for (int r = 0; r < RINGS; r++) {
            int ring = r;
            rings.add(start(() -> {
                await(go);
                for (int sweep = 0; sweep < 64 / RINGS; sweep++) {
                    for (int w = 0; w < WORDS; w++) {
                        log.or(w, 1L << (RINGS * sweep + ring));
                    }
                }
            }));
        }
        Thread sync = start(() -> {
            await(go);
            while (!done.get()) {
                harvest(frontEnd, harvested);
            }
        });
        go.countDown();
        for (Thread t : rings) {
            t.join();
        }
        done.set(true);
        sync.join();
        harvest(frontEnd, harvested);
        return harvested;
    }

    private static Thread start(Runnable r) {
        Thread t = new Thread(r);
        t.start();
        return t;
    }

    private static void harvest(ByteBuffer frontEnd, long[] into) {
        for (int w = 0; w < WORDS; w++) {
            into[w] |= (long) WORD.getAndSet(frontEnd, w * 8, 0L);
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
