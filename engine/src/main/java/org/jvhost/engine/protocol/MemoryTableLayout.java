package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.memory.RegionSpec;

/**
 * The memory table of SET_MEM_TABLE ({@code VhostUserMemory}); one fd per region travels with it.
 * <pre>
 *  0               4               8
 *  +---------------+---------------+--------------------------------------
 *  |   nregions    |    padding    |  regions[nregions] (32 bytes each, {@link MemoryRegionLayout})
 *  +---------------+---------------+--------------------------------------
 * </pre>
 */
public final class MemoryTableLayout {
    public static final int NREGIONS = 0;
    public static final int PADDING = 4;
    public static final int REGIONS = 8;
    /** {@code VHOST_MEMORY_BASELINE_NREGIONS}: the table holds at most 8 regions. */
    public static final int MAX_REGIONS = 8;

    private MemoryTableLayout() {
    }

    public static int nregions(ByteBuffer p) {
        return p.getInt(NREGIONS);
    }

    /** Payload bytes needed for {@code n} regions. */
    public static int sizeFor(int n) {
        return REGIONS + n * MemoryRegionLayout.SIZE;
    }

    public static List<RegionSpec> regions(ByteBuffer p) {
        int n = nregions(p);
        List<RegionSpec> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(MemoryRegionLayout.read(p, REGIONS + i * MemoryRegionLayout.SIZE));
        }
        return out;
    }

    public static ByteBuffer of(List<RegionSpec> regions) {
        ByteBuffer p = Payloads.allocate(sizeFor(regions.size())).putInt(NREGIONS, regions.size());
        for (int i = 0; i < regions.size(); i++) {
            MemoryRegionLayout.write(p, REGIONS + i * MemoryRegionLayout.SIZE, regions.get(i));
        }
        return p;
    }
}
