package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Set;
import org.jvhost.engine.protocol.ConfigLayout;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.HostService;
import org.jvhost.testkit.BackendChannelEnd;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * CONFIG_CHANGE_MSG over the back-end request channel (SET_BACKEND_REQ_FD): offered only to a device
 * that asks for {@link HostService#CONFIG_CHANGE_NOTICE}, sent with NEED_REPLY under REPLY_ACK, never
 * holding up the main channel, and given up (closed, no fd left) when the front-end stalls or garbles
 * its reply.
 */
@Timeout(30)
class ConfigChangeNoticeTest {
    private static final int CODE = 2; // CONFIG_CHANGE_MSG
    private static final long WANTED = ProtocolFeatures.REPLY_ACK | ProtocolFeatures.CONFIG | ProtocolFeatures.BACKEND_REQ;

    @TempDir
    Path dir;
    Host host = new Host(1);
    DeviceContext ctx;

    @AfterEach
    void close() {
        host.close();
    }

    private ScriptedFrontend connect(RecordingDevice device, long protocol) throws Exception {
        Path socket = dir.resolve("cfg.sock");
        ctx = host.newContext("cfg");
        host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
        ScriptedFrontend fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(protocol);
        return fe;
    }

    private static RecordingDevice noticing() {
        RecordingDevice d = new RecordingDevice(2, 8);
        d.services = Set.of(HostService.CONFIG_CHANGE_NOTICE);
        return d;
    }

    @Test
    void aDeviceThatDoesNotAskIsNotOfferedTheChannel() throws Exception {
        try (ScriptedFrontend fe = connect(new RecordingDevice(2, 8), ProtocolFeatures.REPLY_ACK)) {
            assertEquals(0, fe.getProtocolFeatures() & (ProtocolFeatures.BACKEND_REQ | ProtocolFeatures.INFLIGHT_SHMFD));
            assertThrows(ScriptedFrontend.RefusedException.class, () -> BackendChannelEnd.open(fe));
            assertFalse(ctx.notifyConfigChanged(), "no channel: the device is told nobody heard");
        }
    }

    @Test
    void theNoticeAsksForAReplyAndTheMainChannelServesMeanwhile() throws Exception {
        try (ScriptedFrontend fe = connect(noticing(), WANTED)) {
            assertEquals(ProtocolFeatures.BACKEND_REQ, fe.getProtocolFeatures() & ProtocolFeatures.BACKEND_REQ);
            try (BackendChannelEnd ch = BackendChannelEnd.open(fe)) {
                assertTrue(ctx.notifyConfigChanged());
                BackendChannelEnd.Request r = ch.await(3000);
                assertNotNull(r, "CONFIG_CHANGE_MSG arrived");
                assertEquals(CODE, r.header().request());
                assertEquals(MessageHeader.VERSION | MessageHeader.NEED_REPLY, r.header().flags());
                assertEquals(0, r.header().size());
                // QEMU reads the config space before it replies: the main channel must answer meanwhile
                ByteBuffer cfg = fe.call(FrontendRequest.GET_CONFIG, ConfigLayout.of(0, 0, new byte[8])).payload();
                assertEquals(ConfigLayout.PAYLOAD + 8, cfg.remaining());
                ch.reply(CODE, 0);
                assertTrue(ctx.notifyConfigChanged());
                assertNotNull(ch.await(3000), "the next notice goes once the first was answered");
                ch.reply(CODE, 0);
            }
        }
    }

    @Test
    void withoutReplyAckNoticesAreSentWithoutWaiting() throws Exception {
        RecordingDevice device = noticing();
        Path socket = dir.resolve("noack.sock");
        ctx = host.newContext("noack");
        host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.setOwner();
            fe.setFeatures(fe.getFeatures());
            fe.setProtocolFeatures(ProtocolFeatures.CONFIG | ProtocolFeatures.BACKEND_REQ);
            try (BackendChannelEnd ch = BackendChannelEnd.openWithoutReply(fe)) {
                assertTrue(ctx.notifyConfigChanged());
                BackendChannelEnd.Request first = ch.await(3000);
                assertNotNull(first);
                assertEquals(MessageHeader.VERSION, first.header().flags(), "no NEED_REPLY without REPLY_ACK");
                assertTrue(ctx.notifyConfigChanged());
                assertNotNull(ch.await(3000), "no reply awaited: the second notice follows at once");
            }
        }
    }

    @Test
    void aFrontendThatNeverRepliesLosesTheChannelNotTheConnection() throws Exception {
        try (ScriptedFrontend fe = connect(noticing(), WANTED); BackendChannelEnd ch = BackendChannelEnd.open(fe)) {
            int withChannel = ProtocolLifecycleTest.openFds();
            assertTrue(ctx.notifyConfigChanged());
            assertNotNull(ch.await(3000));
            long start = System.nanoTime();
            assertTrue(ch.isClosedByPeer(5000), "the back-end gave the channel up");
            long ms = (System.nanoTime() - start) / 1_000_000;
            assertTrue(ms < 3000, "within about the 1 s reply timeout, took " + ms + " ms");
            assertFalse(ctx.notifyConfigChanged(), "no channel any more");
            assertNotNull(fe.getFeatures(), "the main connection still serves");
            assertTrue(ProtocolLifecycleTest.awaitFdsAtMost(withChannel - 1) <= withChannel - 1,
                    "the back-end closed its copy of the channel");
        }
    }

    @Test
    void aGarbledReplyClosesTheChannel() throws Exception {
        try (ScriptedFrontend fe = connect(noticing(), WANTED); BackendChannelEnd ch = BackendChannelEnd.open(fe)) {
            assertTrue(ctx.notifyConfigChanged());
            assertNotNull(ch.await(3000));
            ch.sendRaw(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20});
            assertTrue(ch.isClosedByPeer(3000));
            assertFalse(ctx.notifyConfigChanged());
            fe.getFeatures();
        }
    }

    @Test
    void aChannelRequestWithoutItsFdIsRefusedAndTheConnectionStays() throws Exception {
        try (ScriptedFrontend fe = connect(noticing(), WANTED)) {
            assertEquals(1, fe.call(FrontendRequest.SET_BACKEND_REQ_FD, null).u64());
            assertFalse(ctx.notifyConfigChanged());
            try (BackendChannelEnd ch = BackendChannelEnd.open(fe)) { // a well-formed one is taken afterwards
                assertTrue(ctx.notifyConfigChanged());
                assertNotNull(ch.await(3000));
            }
        }
    }

    /** A resize while QEMU reconnects, before its SET_BACKEND_REQ_FD: the notice waits for the channel. */
    @Test
    void aNoticeNobodyTookGoesToTheNextChannel() throws Exception {
        try (ScriptedFrontend fe = connect(noticing(), WANTED)) {
            assertFalse(ctx.notifyConfigChanged(), "no channel yet");
            try (BackendChannelEnd ch = BackendChannelEnd.open(fe)) {
                BackendChannelEnd.Request r = ch.await(3000);
                assertNotNull(r, "the notice came with the channel");
                assertEquals(CODE, r.header().request());
                ch.reply(CODE, 0);
            }
        }
    }

    @Test
    void aDisconnectClosesTheChannel() throws Exception {
        ScriptedFrontend fe = connect(noticing(), WANTED);
        int before = ProtocolLifecycleTest.openFds(); // with both ends of the connection
        try (BackendChannelEnd ch = BackendChannelEnd.open(fe)) {
            fe.close();
            assertTrue(ch.isClosedByPeer(3000), "the back-end closed its end with the connection");
        }
        assertFalse(ctx.notifyConfigChanged());
        assertTrue(ProtocolLifecycleTest.awaitFdsAtMost(before - 2) <= before - 2,
                "both ends of the connection and the back-end's channel are closed");
    }
}
