package org.jvhost.engine.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.List;
import org.jvhost.engine.memory.RegionSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(10)
class CodecTest {

    @Test
    void requestCodesMatchTheSpec() {
        assertEquals(1, FrontendRequest.GET_FEATURES.code());
        assertEquals(11, FrontendRequest.GET_VRING_BASE.code());
        assertEquals(38, FrontendRequest.REM_MEM_REG.code());
        assertEquals(40, FrontendRequest.GET_STATUS.code());
        assertEquals(FrontendRequest.SET_VRING_ENABLE, FrontendRequest.of(18));
        assertNull(FrontendRequest.of(0));
        assertNull(FrontendRequest.of(999));
        assertEquals("UNKNOWN(999)", FrontendRequest.nameOf(999));
    }

    @Test
    void headerRoundTrip() throws Exception {
        ByteBuffer b = ByteBuffer.allocate(MessageHeader.SIZE).order(MessageHeader.ORDER);
        new MessageHeader(5, MessageHeader.VERSION | MessageHeader.NEED_REPLY, 264).encode(b);
        MessageHeader h = MessageHeader.decode(b);
        assertEquals(new MessageHeader(5, 0x9, 264), h);
        assertTrue(h.needReply());
        h.checkRequest();
        MessageHeader r = MessageHeader.reply(11, 8);
        assertEquals(MessageHeader.VERSION | MessageHeader.REPLY, r.flags());
    }

    @Test
    void badVersionIsMalformed() {
        ProtocolException e = assertThrows(ProtocolException.class, () -> new MessageHeader(1, 0x2, 0).checkRequest());
        assertTrue(e.isMalformed());
        assertTrue(e.getMessage().contains("GET_FEATURES") && e.getMessage().contains("version 2"), e.getMessage());
    }

    @Test
    void reservedBitsAndReplyBitAreMalformed() {
        assertTrue(assertThrows(ProtocolException.class, () -> new MessageHeader(1, 0x11, 0).checkRequest()).isMalformed());
        assertTrue(assertThrows(ProtocolException.class,
                () -> new MessageHeader(1, MessageHeader.VERSION | MessageHeader.REPLY, 0).checkRequest()).isMalformed());
    }

    @Test
    void oversizedPayloadIsMalformed() {
        ProtocolException e = assertThrows(ProtocolException.class,
                () -> new MessageHeader(2, 1, MessageHeader.MAX_PAYLOAD + 1).checkRequest());
        assertTrue(e.getMessage().contains("4097"), e.getMessage());
        assertThrows(ProtocolException.class, () -> new MessageHeader(2, 1, -1).checkRequest());
    }

    @Test
    void u64AndVringStateRoundTrip() throws Exception {
        ByteBuffer u = U64Layout.of(0x1_0000_0001L);
        assertEquals(0x1_0000_0001L, U64Layout.get(u));
        ByteBuffer s = VringStateLayout.of(3, 256);
        assertEquals(3, VringStateLayout.index(s));
        assertEquals(256, VringStateLayout.num(s));
        Payloads.checkSize(FrontendRequest.SET_VRING_NUM, s);
        Payloads.checkSize(FrontendRequest.SET_FEATURES, u);
    }

    @Test
    void vringAddrRoundTrip() throws Exception {
        ByteBuffer a = VringAddrLayout.of(1, 0, 0x1000, 0x3000, 0x2000, 0);
        assertEquals(VringAddrLayout.SIZE, a.remaining());
        assertEquals(1, VringAddrLayout.index(a));
        assertEquals(0x1000, VringAddrLayout.desc(a));
        assertEquals(0x3000, VringAddrLayout.used(a));
        assertEquals(0x2000, VringAddrLayout.avail(a));
        Payloads.checkSize(FrontendRequest.SET_VRING_ADDR, a);
    }

    @Test
    void memoryTableRoundTrip() throws Exception {
        List<RegionSpec> regions = List.of(new RegionSpec(0, 1 << 20, 0x7f00_0000_0000L, 0),
                new RegionSpec(1L << 32, 1 << 21, 0x7f10_0000_0000L, 4096));
        ByteBuffer t = MemoryTableLayout.of(regions);
        assertEquals(8 + 2 * 32, t.remaining());
        Payloads.checkSize(FrontendRequest.SET_MEM_TABLE, t);
        assertEquals(regions, MemoryTableLayout.regions(t));
        ByteBuffer single = SingleMemRegionLayout.of(regions.get(1));
        Payloads.checkSize(FrontendRequest.ADD_MEM_REG, single);
        assertEquals(regions.get(1), SingleMemRegionLayout.region(single));
    }

    @Test
    void memoryTableWithTooManyRegionsOrTooShortIsMalformed() {
        ByteBuffer t = Payloads.allocate(8 + 9 * 32).putInt(0, 9);
        assertTrue(assertThrows(ProtocolException.class,
                () -> Payloads.checkSize(FrontendRequest.SET_MEM_TABLE, t)).getMessage().contains("nregions 9"));
        ByteBuffer shortT = Payloads.allocate(8 + 32).putInt(0, 2);
        assertThrows(ProtocolException.class, () -> Payloads.checkSize(FrontendRequest.SET_MEM_TABLE, shortT));
    }

    @Test
    void configRoundTripAndSizeMismatch() throws Exception {
        ByteBuffer c = ConfigLayout.of(6, 0, new byte[] {1, 2});
        Payloads.checkSize(FrontendRequest.SET_CONFIG, c);
        assertEquals(6, ConfigLayout.offset(c));
        assertEquals(2, ConfigLayout.bytes(c).length);
        c.putInt(ConfigLayout.SIZE_FIELD, 3);
        assertTrue(assertThrows(ProtocolException.class,
                () -> Payloads.checkSize(FrontendRequest.SET_CONFIG, c)).isMalformed());
    }

    @Test
    void wrongFixedSizesAreMalformed() {
        assertThrows(ProtocolException.class, () -> Payloads.checkSize(FrontendRequest.SET_FEATURES, Payloads.allocate(4)));
        assertThrows(ProtocolException.class, () -> Payloads.checkSize(FrontendRequest.SET_VRING_ADDR, Payloads.allocate(32)));
        assertThrows(ProtocolException.class, () -> Payloads.checkSize(FrontendRequest.SET_VRING_ENABLE, Payloads.allocate(16)));
    }
}
