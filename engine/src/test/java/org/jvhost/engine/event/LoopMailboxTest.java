package org.jvhost.engine.event;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.junit.jupiter.api.Test;

/** A mailbox whose loop has stopped: what a late poster may and may not do. */
class LoopMailboxTest {

    @Test
    void aPostAfterCloseNeverWritesTheOldFdNumber() throws NativeException {
        int epfd = LinuxSys.epollCreate();
        try {
            LoopMailbox mailbox = new LoopMailbox("test-loop", epfd, 1);
            mailbox.post(() -> { });
            mailbox.close();
            // The kernel hands out the lowest free number: this eventfd takes the closed wake fd's.
            int reused = LinuxSys.eventfd(LinuxSys.EFD_NONBLOCK | LinuxSys.EFD_CLOEXEC);
            try {
                mailbox.post(() -> { });
                assertEquals(-1, LinuxSys.eventfdRead(reused),
                        "a command posted after close wrote to whatever now holds the wake fd's number");
            } finally {
                LinuxSys.closeQuietly(reused);
            }
            mailbox.close();
        } finally {
            LinuxSys.closeQuietly(epfd);
        }
    }
}
