package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;
import org.jvhost.engine.memory.RegionSpec;

/**
 * The single-region payload of ADD_MEM_REG and REM_MEM_REG ({@code VhostUserMemRegMsg}):
 * <pre>
 *  0                               8                                           40
 *  +-------------------------------+-------------------------------------------+
 *  |            padding            |  region ({@link MemoryRegionLayout})      |
 *  +-------------------------------+-------------------------------------------+
 * </pre>
 */
public final class SingleMemRegionLayout {
    public static final int PADDING = 0;
    public static final int REGION = 8;
    public static final int SIZE = REGION + MemoryRegionLayout.SIZE;

    private SingleMemRegionLayout() {
    }

    public static RegionSpec region(ByteBuffer p) {
        return MemoryRegionLayout.read(p, REGION);
    }

    public static ByteBuffer of(RegionSpec r) {
        ByteBuffer p = Payloads.allocate(SIZE);
        MemoryRegionLayout.write(p, REGION, r);
        return p;
    }
}
