package org.jvhost.engine.virtq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import java.util.TreeSet;
import org.jvhost.engine.memory.DirtyLog;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A queue's dirty-page logging over a real log mapping: what is marked, and when. */
@Timeout(10)
class RingLogTest {
    private static final int RAM = 16 << 20;
    private static final long USED_LOG_ADDRESS = 0x800000;

    DirtyLog log;
    MockSplitQueue driver;
    SplitQueue queue;

    @BeforeEach
    void setUp() throws Exception {
        int fd = LinuxSys.memfdCreate("jvhost-test-ring-log", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
        LinuxSys.truncate(fd, RAM / 4096 / 8);
        log = DirtyLog.map(fd, RAM / 4096 / 8, 0);
        driver = MockSplitQueue.create(FakeGuestMemory.of(0, RAM), 16, 0, RAM);
        queue = driver.deviceQueue(0, new CountingNotifier());
    }

    @AfterEach
    void tearDown() {
        log.unmap();
    }

    private Set<Long> dirty() {
        Set<Long> pages = new TreeSet<>();
        for (long p = 0; p < log.pages(); p++) {
            if (log.isDirty(p)) {
                pages.add(p);
            }
        }
        return pages;
    }

    @Test
    void marksTheWrittenBytesUpToTheUsedLengthOnlyOnceTheUsedIndexIsPublished() {
        queue.setLog(new RingLog(log, USED_LOG_ADDRESS));
        int head = driver.addChain(new byte[0][], new int[] {3 * 4096, 3 * 4096});
        DescriptorChain c = queue.newChain();
        assertTrue(queue.pop(c));
        queue.addUsed(c, 3 * 4096 + 100); // all of the first buffer, 100 bytes of the second
        assertEquals(Set.of(), dirty(), "nothing is marked before the used index is published");
        queue.publishUsed();

        long[] w = driver.writableBuffers(head);
        Set<Long> expected = new TreeSet<>();
        for (long a = w[0]; a < w[0] + w[1]; a += 4096) {
            expected.add(a >>> 12);
        }
        expected.add((w[0] + w[1] - 1) >>> 12);
        expected.add(w[2] >>> 12);
        expected.add((w[2] + 99) >>> 12);
        expected.add(USED_LOG_ADDRESS >>> 12); // elements and index, at log_guest_addr
        assertEquals(expected, dirty());
        assertFalse(dirty().contains(driver.usedGpa() >>> 12), "the used ring's own address is not where it is logged");
    }

    @Test
    void theKickSuppressionTheDeviceWritesIsMarkedAtTheUsedLogAddress() {
        queue.setLog(new RingLog(log, USED_LOG_ADDRESS));
        queue.disableNotifications(); // VRING_USED_F_NO_NOTIFY into used->flags (no EVENT_IDX here)
        queue.setLog(null); // flushes what was noted
        assertEquals(Set.of(USED_LOG_ADDRESS >>> 12), dirty());
    }

    @Test
    void moreWordsThanTheCacheHoldsAreAllMarked() {
        RingLog ringLog = new RingLog(log, -1);
        Set<Long> expected = new TreeSet<>();
        for (long word = 0; word < RingLog.CACHE_WORDS + 8; word++) {
            long page = word * 64 + word % 64;
            ringLog.written(page << 12, 1);
            expected.add(page);
        }
        ringLog.flush();
        assertEquals(expected, dirty());
    }

    @Test
    void switchingTheLogOffFlushesWhatWasNoted() {
        queue.setLog(new RingLog(log, -1));
        driver.addChain(new byte[0][], new int[] {64});
        DescriptorChain c = queue.newChain();
        assertTrue(queue.pop(c));
        queue.addUsed(c, 4);
        queue.setLog(null); // GET_VRING_BASE, or LOG_ALL off, before the device published
        assertEquals(1, dirty().size(), "the chain's page, and no used-ring page without VHOST_VRING_F_LOG");
        queue.publishUsed();
        assertEquals(1, dirty().size(), "nothing is logged with logging off");
    }
}
