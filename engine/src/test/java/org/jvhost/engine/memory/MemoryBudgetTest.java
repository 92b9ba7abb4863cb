package org.jvhost.engine.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.TimeUnit;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Mappings count against a connection's and the host's limit from mmap to munmap. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MemoryBudgetTest {
    private static final long MIB = 1L << 20;

    private int fd = -1;

    @BeforeEach
    void createFile() throws NativeException {
        fd = LinuxSys.memfdCreate("memory-budget-test", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
        LinuxSys.truncate(fd, 4 * MIB);
    }

    @AfterEach
    void closeFile() {
        LinuxSys.closeQuietly(fd);
    }

    private MappedRegion map(long gpa, long size, MemoryBudget.Account account) throws Exception {
        return MappedRegion.map(new RegionSpec(gpa, size, gpa, 0), LinuxSys.dupCloexec(fd), account);
    }

    @Test
    void aConnectionMapsUpToItsLimitAndTheRefusalNamesTheLimitAndTheOption() throws Exception {
        MemoryBudget budget = new MemoryBudget(64 * MIB, 2 * MIB);
        MemoryBudget.Account account = budget.newAccount();
        MappedRegion first = map(0, 2 * MIB, account);
        MemoryMapException e = assertThrows(MemoryMapException.class, () -> map(2 * MIB, 4096, account));
        assertTrue(e.getMessage().contains("guest-memory limit of 2 MiB"), e.getMessage());
        assertTrue(e.getMessage().contains("--max-guest-memory"), e.getMessage());
        assertTrue(e.getMessage().contains("gpa=0x200000"), e.getMessage());
        assertEquals(2 * MIB, account.mapped());
        first.unmap();
        assertEquals(0, account.mapped());
        assertEquals(0, budget.hostMapped());
        map(2 * MIB, 2 * MIB, account).unmap(); // room again once unmapped
    }

    @Test
    void allConnectionsTogetherStayBelowTheHostLimit() throws Exception {
        MemoryBudget budget = new MemoryBudget(3 * MIB, 2 * MIB);
        MemoryBudget.Account a = budget.newAccount();
        MemoryBudget.Account b = budget.newAccount();
        MappedRegion fromA = map(0, 2 * MIB, a);
        MappedRegion fromB = map(0, MIB, b);
        MemoryMapException e = assertThrows(MemoryMapException.class, () -> map(MIB, MIB, b));
        assertTrue(e.getMessage().contains("limit of 3 MiB of guest memory over all connections"), e.getMessage());
        assertTrue(e.getMessage().contains("--max-mapped-memory"), e.getMessage());
        assertEquals(MIB, b.mapped(), "a refused mapping is not counted");
        assertEquals(3 * MIB, budget.hostMapped());
        fromA.unmap();
        map(MIB, MIB, b).unmap();
        fromB.unmap();
        assertEquals(0, budget.hostMapped());
    }

    @Test
    void limitsAreShownInTheLargestWholeUnit() {
        assertEquals("4 TiB", MemoryBudget.describe(MemoryBudget.DEFAULT_CONNECTION_LIMIT));
        assertEquals("1536 GiB", MemoryBudget.describe(1536L << 30));
        assertEquals("12345 bytes", MemoryBudget.describe(12345));
    }

    @Test
    void limitsAreReadWithOrWithoutABinaryUnit() {
        assertEquals(4L << 40, MemoryBudget.parseLimit("4T"));
        assertEquals(512L << 30, MemoryBudget.parseLimit("512GiB"));
        assertEquals(1536L << 30, MemoryBudget.parseLimit("1536 G"));
        assertEquals(4096, MemoryBudget.parseLimit("4096"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MemoryBudget.parseLimit("4X"));
        assertTrue(e.getMessage().contains("'4X'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> MemoryBudget.parseLimit("0"));
        assertThrows(IllegalArgumentException.class, () -> MemoryBudget.parseLimit("16777216T"));
    }
}
