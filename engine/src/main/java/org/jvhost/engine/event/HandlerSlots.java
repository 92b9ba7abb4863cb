package org.jvhost.engine.event;

import java.util.Arrays;
import org.jvhost.engine.sys.NativeException;

/**
 * The fds a loop thread watches in its {@link EpollSet}, and who handles each: a slot table indexed by
 * the epoll token a watch was added with, shared by a {@link Worker} and a server's control loop. Loop
 * thread only, so looking a token up is two array reads with no lock and no allocation.
 *
 * <p>A token is {@code generation << 32 | slot}. Removing a watch bumps its slot's generation, so an
 * event still queued in the current epoll batch for a watch a handler just removed carries the old
 * generation and finds nothing, instead of reaching whatever reused the slot. No token is
 * {@link EpollSet#WAKE_TOKEN} (-1): that would need slot 2^32 - 1.
 */
public final class HandlerSlots {
    private final EpollSet epoll;
    private EventHandler[] handlers = new EventHandler[16];
    private int[] generations = new int[16];
    private int[] fds = new int[16];

    public HandlerSlots(EpollSet epoll) {
        this.epoll = epoll;
        Arrays.fill(fds, -1);
    }

    /** Adds {@code fd} to the epoll set for {@code events}, handled by {@code handler}. Returns its token. */
    public long add(int fd, int events, EventHandler handler) throws NativeException {
        int slot = freeSlot();
        long token = ((long) generations[slot] << 32) | slot;
        epoll.add(fd, events, token);
        handlers[slot] = handler;
        fds[slot] = fd;
        return token;
    }

    /** Changes the events watched for {@code token} (0 pauses); nothing if it was removed. */
    public void modify(long token, int events) throws NativeException {
        if (handler(token) != null) {
            epoll.modify(fds[(int) token], events, token);
        }
    }

    /** Removes the watch; idempotent. The caller still owns the fd. */
    public void remove(long token) {
        if (handler(token) == null) {
            return;
        }
        int slot = (int) token;
        epoll.remove(fds[slot]);
        handlers[slot] = null;
        fds[slot] = -1;
        generations[slot]++;
    }

    /** The handler of {@code token}, or null if its watch was removed (or it is no token of ours). */
    public EventHandler handler(long token) {
        int slot = (int) token;
        if (slot < 0 || slot >= handlers.length || generations[slot] != (int) (token >>> 32)) {
            return null;
        }
        return handlers[slot];
    }

    private int freeSlot() {
        for (int i = 0; i < handlers.length; i++) {
            if (handlers[i] == null) {
                return i;
            }
        }
        int old = handlers.length;
        handlers = Arrays.copyOf(handlers, old * 2);
        generations = Arrays.copyOf(generations, old * 2);
        fds = Arrays.copyOf(fds, old * 2);
        Arrays.fill(fds, old, old * 2, -1);
        return old;
    }
}
