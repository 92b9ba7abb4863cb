package org.jvhost.bench;

import java.util.concurrent.TimeUnit;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The notification syscalls, to put the per-batch cost in context: the host signals a used batch with
 * one {@link LinuxSys#eventfdWrite} on the queue's call eventfd, and consumes a kick with one
 * {@link LinuxSys#eventfdRead}.
 *
 * <p>{@code write} is one 8-byte write(2) on a real non-blocking eventfd through JNA direct mapping; the
 * counter is drained with a read every {@value #DRAIN_EVERY} writes (that read is included, amortised
 * to about 1/{@value #DRAIN_EVERY} of its cost). {@code writeThenRead} is a call plus a kick drain.
 *
 * <p>Excludes what a real call costs beyond the syscall: nobody waits on this eventfd, so no waiter is
 * woken and no KVM irqfd injects an interrupt (with a guest, the write also wakes the vCPU or QEMU's
 * thread, which costs microseconds on the other side).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class EventfdBench {
    static final int DRAIN_EVERY = 1024;

    private int fd = -1;
    private int writes;

    @Setup(Level.Trial)
    public void setUp() throws NativeException {
        fd = LinuxSys.eventfd(LinuxSys.EFD_NONBLOCK | LinuxSys.EFD_CLOEXEC);
    }

    @Benchmark
    public boolean write() throws NativeException {
        if (++writes == DRAIN_EVERY) {
            writes = 0;
            LinuxSys.eventfdRead(fd);
        }
        return LinuxSys.eventfdWrite(fd, 1);
    }

    @Benchmark
    public long writeThenRead() throws NativeException {
        LinuxSys.eventfdWrite(fd, 1);
        return LinuxSys.eventfdRead(fd);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        LinuxSys.closeQuietly(fd);
    }
}
