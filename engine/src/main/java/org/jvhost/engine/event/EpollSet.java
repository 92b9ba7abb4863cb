package org.jvhost.engine.event;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The core every loop thread shares, a {@link Worker} or a server's control loop: an epoll set, the
 * {@link LoopMailbox} whose wake eventfd sits in it, and the buffer epoll_wait fills. The loop thread
 * calls {@link #waitAndDispatch} once a turn: the wake-up is handled here, every other ready fd goes to
 * the loop's own dispatch, each with the 64-bit token it was added with (tokens and handlers:
 * {@link HandlerSlots}). Everything but {@link #mailbox()}'s posting is for the loop thread only.
 *
 * <pre>
 * struct epoll_event (x86-64, packed: 12 bytes)
 *   0      4                  12
 *   +------+------------------+
 *   |events| data (our token) |
 *   +------+------------------+
 * </pre>
 */
public final class EpollSet implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EpollSet.class);
    /** Ready fds taken per epoll_wait; more wait for the next turn (level-triggered, nothing is lost). */
    private static final int MAX_EVENTS = 64;
    /** The wake eventfd's token; a loop never hands it out ({@link HandlerSlots} cannot reach it). */
    static final long WAKE_TOKEN = -1L;

    /** Receives one ready fd: its epoll events and the token it was added with. Loop thread only. */
    @FunctionalInterface
    public interface Dispatch {
        void onEvent(int events, long token);
    }

    private final String name;
    private final int epfd;
    private final LoopMailbox mailbox;
    private final Memory events = new Memory((long) MAX_EVENTS * LinuxSys.EPOLL_EVENT_SIZE);
    private final long eventsAddress = Pointer.nativeValue(events);

    /** @param name the loop thread's name, for messages */
    public EpollSet(String name) throws NativeException {
        this.name = name;
        this.epfd = LinuxSys.epollCreate();
        try {
            this.mailbox = new LoopMailbox(name, epfd, WAKE_TOKEN);
        } catch (NativeException e) {
            LinuxSys.closeQuietly(epfd);
            events.close();
            throw e;
        }
    }

    /** The loop's command queue; bind it to the loop thread before that starts. */
    public LoopMailbox mailbox() {
        return mailbox;
    }

    /** Watches {@code fd} (level-triggered) for {@code events} under {@code token}. */
    public void add(int fd, int events, long token) throws NativeException {
        LinuxSys.epollCtl(epfd, LinuxSys.EPOLL_CTL_ADD, fd, events, token);
    }

    /** Changes what {@code fd} is watched for (0 pauses it). */
    public void modify(int fd, int events, long token) throws NativeException {
        LinuxSys.epollCtl(epfd, LinuxSys.EPOLL_CTL_MOD, fd, events, token);
    }

    /** Stops watching {@code fd}; an fd already closed (and so gone from the set) is only logged. */
    public void remove(int fd) {
        try {
            LinuxSys.epollCtl(epfd, LinuxSys.EPOLL_CTL_DEL, fd, 0, 0);
        } catch (NativeException e) {
            LOG.debug("{}: epoll DEL fd {}: {}", name, fd, e.getMessage());
        }
    }

    /**
     * Waits up to {@code timeoutMs} (-1: until something is ready, 0: not at all), clears the wake
     * eventfd if it fired, and hands every other ready fd to {@code dispatch}, in the order epoll gave.
     *
     * @return how many fds were ready, the wake eventfd included
     * @throws NativeException if epoll_wait itself fails (the set is broken: the loop should stop)
     */
    public int waitAndDispatch(int timeoutMs, Dispatch dispatch) throws NativeException {
        int n = LinuxSys.epollWait(epfd, eventsAddress, MAX_EVENTS, timeoutMs);
        for (int i = 0; i < n; i++) {
            long at = (long) i * LinuxSys.EPOLL_EVENT_SIZE;
            long token = events.getLong(at + 4);
            if (token == WAKE_TOKEN) {
                mailbox.onWake();
            } else {
                dispatch.onEvent(events.getInt(at), token);
            }
        }
        return n;
    }

    /**
     * Waits up to {@code joinMs} for {@code loopThread}, which the caller has told to stop, and then
     * closes the set. If the thread is still running its fds are left open: closing them under a running
     * epoll_wait would be worse than the leak.
     */
    public void closeAfter(Thread loopThread, long joinMs) {
        try {
            loopThread.join(joinMs);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (loopThread.isAlive()) {
            LOG.warn("{} did not stop within {} ms", name, joinMs);
            return;
        }
        close();
    }

    /** Closes the wake eventfd, the epoll set and the buffer; only once the loop thread has stopped. */
    @Override
    public void close() {
        mailbox.close();
        LinuxSys.closeQuietly(epfd);
        events.close();
    }
}
