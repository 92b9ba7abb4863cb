package org.jvhost.engine.memory;

import java.nio.ByteBuffer;
import org.jvhost.spi.MemoryRegion;

/**
 * A region mapped from the fd the front-end sent (STUB: signatures agreed between the memory owner and
 * the protocol owner; bodies to be written).
 */
public final class MappedRegion implements MemoryRegion {

    private MappedRegion() {
    }

    /**
     * Maps {@code spec} from {@code fd}. Takes ownership of {@code fd} (an fd the engine owns, not one
     * junixsocket tracks) and closes it once mapped or on failure. Checks the file is large enough
     * ({@code mmapOffset + size <= file size}), seals it against shrinking where possible, and maps from
     * the offset aligned down to the fd's page size.
     */
    public static MappedRegion map(RegionSpec spec, int fd) throws MemoryMapException {
        throw new UnsupportedOperationException("stub");
    }

    /** The wire description this region was mapped from. */
    public RegionSpec spec() {
        throw new UnsupportedOperationException("stub");
    }

    /** Unmaps the region. Idempotent. Only the control thread calls it, after no queue uses the region. */
    public void unmap() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public long guestAddress() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public long size() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public ByteBuffer window(long offset) {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public long nativeAddress() {
        throw new UnsupportedOperationException("stub");
    }
}
