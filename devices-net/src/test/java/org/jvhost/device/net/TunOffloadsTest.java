package org.jvhost.device.net;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.concurrent.TimeUnit;
import org.jvhost.spi.virtio.VirtioNet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 10, unit = TimeUnit.SECONDS)
class TunOffloadsTest {

    @Test
    void eachAckedGuestOffloadBecomesItsTunFlag() {
        assertEquals(0, TunOffloads.tunFlags(0));
        assertEquals(TunOffloads.TUN_F_CSUM, TunOffloads.tunFlags(VirtioNet.F_GUEST_CSUM));
        assertEquals(TunOffloads.TUN_F_CSUM | TunOffloads.TUN_F_TSO4 | TunOffloads.TUN_F_TSO6
                        | TunOffloads.TUN_F_TSO_ECN | TunOffloads.TUN_F_UFO,
                TunOffloads.tunFlags(VirtioNet.F_GUEST_CSUM | VirtioNet.F_GUEST_TSO4 | VirtioNet.F_GUEST_TSO6
                        | VirtioNet.F_GUEST_ECN | VirtioNet.F_GUEST_UFO));
        assertEquals(TunOffloads.TUN_F_CSUM | TunOffloads.TUN_F_TSO6,
                TunOffloads.tunFlags(VirtioNet.F_GUEST_CSUM | VirtioNet.F_GUEST_TSO6));
    }

    @Test
    void hostOffloadsNeedNoTunFlag() {
        assertEquals(0, TunOffloads.tunFlags(TunOffloads.HOST_FEATURES | VirtioNet.F_MRG_RXBUF));
    }

    @Test
    void flagsTheKernelWouldRejectAreNeverAskedFor() {
        // TSO without CSUM and ECN without TSO make TUNSETOFFLOAD fail with EINVAL (tun.c set_offload)
        assertEquals(0, TunOffloads.tunFlags(VirtioNet.F_GUEST_TSO4 | VirtioNet.F_GUEST_ECN));
        assertEquals(TunOffloads.TUN_F_CSUM, TunOffloads.tunFlags(VirtioNet.F_GUEST_CSUM | VirtioNet.F_GUEST_ECN));
    }

    @Test
    void guestFeaturesFollowWhatTheTapAcceptedWithTheirDependencies() {
        assertEquals(0, TunOffloads.guestFeatures(0));
        assertEquals(0, TunOffloads.guestFeatures(TunOffloads.TUN_F_TSO4), "TSO without checksum offload is useless");
        assertEquals(VirtioNet.F_GUEST_CSUM, TunOffloads.guestFeatures(TunOffloads.TUN_F_CSUM));
        assertEquals(VirtioNet.F_GUEST_CSUM | VirtioNet.F_GUEST_TSO4 | VirtioNet.F_GUEST_ECN,
                TunOffloads.guestFeatures(TunOffloads.TUN_F_CSUM | TunOffloads.TUN_F_TSO4 | TunOffloads.TUN_F_TSO_ECN));
        assertEquals(VirtioNet.F_GUEST_CSUM | VirtioNet.F_GUEST_UFO,
                TunOffloads.guestFeatures(TunOffloads.TUN_F_CSUM | TunOffloads.TUN_F_UFO | TunOffloads.TUN_F_TSO_ECN),
                "ECN without TSO is not offered");
    }
}
