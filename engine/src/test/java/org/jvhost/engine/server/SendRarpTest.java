package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** SEND_RARP reaches a device that can announce a migrated guest, with the guest's MAC. */
@Timeout(30)
class SendRarpTest {
    @TempDir
    Path dir;
    Host host = new Host(1);

    @AfterEach
    void close() {
        host.close();
    }

    private ScriptedFrontend connect(RecordingDevice device) throws Exception {
        Path socket = dir.resolve("rarp" + device.announces + ".sock");
        host.addDevice(host.newContext("rarp"), device, socket, Host.Mode.LISTEN);
        ScriptedFrontend fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        return fe;
    }

    /** QEMU's payload: the MAC in the first 6 bytes of the u64. */
    private static ByteBuffer mac() {
        return U64Layout.of(0).put(0, new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x56});
    }

    @Test
    void aDeviceThatAnnouncesGetsTheGuestsMac() throws Exception {
        RecordingDevice device = new RecordingDevice(2, 0);
        device.announces = true;
        try (ScriptedFrontend fe = connect(device)) {
            assertEquals(ProtocolFeatures.RARP, fe.getProtocolFeatures() & ProtocolFeatures.RARP);
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.RARP);
            assertEquals(0, fe.call(FrontendRequest.SEND_RARP, mac()).u64());
            device.await("announce 52:54:00:12:34:56");
        }
    }

    @Test
    void aDeviceThatCannotIsNotOfferedRarp() throws Exception {
        RecordingDevice device = new RecordingDevice(2, 0);
        try (ScriptedFrontend fe = connect(device)) {
            assertEquals(0, fe.getProtocolFeatures() & ProtocolFeatures.RARP);
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
            assertEquals(1, fe.call(FrontendRequest.SEND_RARP, mac()).u64(), "refused: RARP not negotiated");
        }
    }
}
