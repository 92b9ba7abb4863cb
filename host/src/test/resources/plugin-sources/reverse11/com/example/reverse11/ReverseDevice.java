package com.example.reverse11;

import java.util.Arrays;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;

/** One queue: each chain's readable bytes come back reversed in its writable part, used in the kick. */
final class ReverseDevice implements VhostUserDevice {
    private Virtqueue queue;
    private DescriptorChain chain;

    @Override public int deviceType() { return 0x7f; }
    @Override public int maxQueues() { return 1; }
    @Override public long features() { return 1L << 3; }
    @Override public void ackFeatures(long acked) { }
    @Override public void startQueue(int queueIndex, Virtqueue q) { queue = q; chain = q.newChain(); }
    @Override public Virtqueue stopQueue(int queueIndex) { Virtqueue q = queue; queue = null; return q; }
    @Override public void reset() { queue = null; }

    @Override
    public void handleKick(int queueIndex) {
        do {
            queue.disableNotifications();
            while (queue.pop(chain)) {
                byte[] in = new byte[chain.readableBytes()];
                chain.read(0, in, 0, in.length);
                byte[] out = new byte[Math.min(in.length, chain.writableBytes())];
                for (int i = 0; i < out.length; i++) {
                    out[i] = in[in.length - 1 - i];
                }
                chain.write(0, out, 0, out.length);
                queue.addUsed(chain, out.length);
            }
            queue.signalUsed();
        } while (queue.enableNotifications());
    }

    @Override public java.util.Map<String, Long> counters() { return java.util.Map.of("spi_minor", 1L); }
}
