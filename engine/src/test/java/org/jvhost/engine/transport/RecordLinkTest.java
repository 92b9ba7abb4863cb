package org.jvhost.engine.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.EOFException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import org.jvhost.engine.sys.LinuxSys;
import org.junit.jupiter.api.Test;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.newsclub.net.unix.AFUNIXSocketPair;

/** The hot-upgrade framing: records with fds over a Unix socket pair. */
class RecordLinkTest {
    private static final long SECOND = 1_000_000_000L;

    @Test
    void aRecordArrivesWithItsBodyAndFdsAndTheNextOneWithItsOwn() throws Exception {
        AFUNIXSocketPair<AFUNIXSocketChannel> pair = AFUNIXSocketPair.open();
        int a = LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC);
        int b = LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC);
        try (RecordLink tx = new RecordLink(pair.getSocket1()); RecordLink rx = new RecordLink(pair.getSocket2())) {
            tx.send(7, ByteBuffer.wrap(new byte[] {1, 2, 3}), a, b);
            tx.send(8, null);
            RecordLink.Record r = rx.receive(System.nanoTime() + SECOND);
            assertEquals(7, r.type());
            assertEquals(3, r.body().remaining());
            assertEquals(2, r.fds().length);
            LinuxSys.eventfdWrite(r.fds()[0], 5);
            assertEquals(5, LinuxSys.eventfdRead(a), "the fd received is the eventfd sent");
            r.closeFds();
            RecordLink.Record next = rx.receive(System.nanoTime() + SECOND);
            assertEquals(8, next.type());
            assertEquals(0, next.fds().length, "the first record's fds do not spill into the next");
        } finally {
            LinuxSys.closeQuietly(a);
            LinuxSys.closeQuietly(b);
        }
    }

    @Test
    void aRecordWhoseFdCountIsWrongIsRefusedAndItsFdsClosed() throws Exception {
        AFUNIXSocketPair<AFUNIXSocketChannel> pair = AFUNIXSocketPair.open();
        int a = LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC);
        try (RecordLink rx = new RecordLink(pair.getSocket2())) {
            ByteBuffer lie = ByteBuffer.allocate(RecordLink.HEADER_SIZE).order(RecordLink.ORDER).putInt(7).putInt(0).putInt(0).flip();
            pair.getSocket1().setOutboundFileDescriptors(
                    org.newsclub.net.unix.FileDescriptorCast.unsafeUsing(a).getFileDescriptor());
            pair.getSocket1().write(lie);
            java.io.IOException e = assertThrows(java.io.IOException.class, () -> rx.receive(System.nanoTime() + SECOND));
            assertTrue(e.getMessage().contains("announced 0 fds and carried 1"), e.getMessage());
        } finally {
            LinuxSys.closeQuietly(a);
            pair.getSocket1().close();
        }
    }

    @Test
    void silenceTimesOutAndAClosedPeerIsTheEnd() throws Exception {
        AFUNIXSocketPair<AFUNIXSocketChannel> pair = AFUNIXSocketPair.open();
        try (RecordLink rx = new RecordLink(pair.getSocket2())) {
            assertThrows(SocketTimeoutException.class, () -> rx.receive(System.nanoTime() + SECOND / 10));
            pair.getSocket1().close();
            assertThrows(EOFException.class, () -> rx.receive(System.nanoTime() + SECOND));
        }
    }
}
