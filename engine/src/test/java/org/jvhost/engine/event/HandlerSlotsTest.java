package org.jvhost.engine.event;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.sys.LinuxSys;
import org.junit.jupiter.api.Test;

/** The slot table a worker and a control loop dispatch through: stale tokens find nothing. */
class HandlerSlotsTest {

    @Test
    void aRemovedWatchsTokenFindsNothingEvenWhenItsSlotIsReused() throws Exception {
        int a = LinuxSys.eventfd(LinuxSys.EFD_NONBLOCK | LinuxSys.EFD_CLOEXEC);
        int b = LinuxSys.eventfd(LinuxSys.EFD_NONBLOCK | LinuxSys.EFD_CLOEXEC);
        try (EpollSet epoll = new EpollSet("slots-test")) {
            HandlerSlots slots = new HandlerSlots(epoll);
            EventHandler first = ev -> { };
            EventHandler second = ev -> { };
            long old = slots.add(a, LinuxSys.EPOLLIN, first);
            assertSame(first, slots.handler(old));
            slots.remove(old);
            slots.remove(old); // idempotent
            assertNull(slots.handler(old));
            long reused = slots.add(b, LinuxSys.EPOLLIN, second);
            assertEquals((int) old, (int) reused, "the slot is reused");
            assertNotEquals(old, reused, "with another generation");
            assertNull(slots.handler(old), "an event queued for the removed watch reaches nobody");
            assertSame(second, slots.handler(reused));
            slots.modify(old, 0); // a stale token changes nothing, and does not throw
            assertNull(slots.handler(EpollSet.WAKE_TOKEN), "the mailbox's token is never a handler's");
            slots.remove(reused);
        } finally {
            LinuxSys.closeQuietly(a);
            LinuxSys.closeQuietly(b);
        }
    }

    @Test
    void theTableGrowsAndDispatchesEveryReadyFd() throws Exception {
        List<Integer> fds = new ArrayList<>();
        try (EpollSet epoll = new EpollSet("slots-test")) {
            HandlerSlots slots = new HandlerSlots(epoll);
            int[] calls = new int[40];
            List<Long> tokens = new ArrayList<>();
            for (int i = 0; i < calls.length; i++) {
                int fd = LinuxSys.eventfd(LinuxSys.EFD_NONBLOCK | LinuxSys.EFD_CLOEXEC);
                fds.add(fd);
                int k = i;
                tokens.add(slots.add(fd, LinuxSys.EPOLLIN, ev -> calls[k]++));
                LinuxSys.eventfdWrite(fd, 1);
            }
            // all 40 are ready, and one epoll_wait takes up to 64
            assertEquals(calls.length, epoll.waitAndDispatch(100, (ev, token) -> slots.handler(token).onReady(ev)));
            for (int i = 0; i < calls.length; i++) {
                assertEquals(1, calls[i], "fd " + i + " dispatched once");
            }
            tokens.forEach(slots::remove);
        } finally {
            fds.forEach(LinuxSys::closeQuietly);
        }
    }
}
