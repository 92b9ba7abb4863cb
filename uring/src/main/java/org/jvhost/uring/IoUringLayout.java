package org.jvhost.uring;

/**
 * The io_uring ABI this library uses (include/uapi/linux/io_uring.h; io_uring_setup(2),
 * io_uring_enter(2), io_uring_register(2)): the setup parameters, the two shared rings and the 64-byte
 * submission entry.
 *
 * <pre>
 * struct io_uring_params (120 bytes)          struct io_uring_sqe (64 bytes, the fields used)
 *   0 sq_entries   4 cq_entries   8 flags        0 u8 opcode  1 u8 flags  2 u16 ioprio  4 s32 fd
 *  20 features                                    8 u64 off: file offset (ignored by a TAP or socket)
 *  40 sq_off: head tail ring_mask ring_entries   16 u64 addr: the iovec array
 *             flags dropped array (u32 each)     24 u32 len: iovec count   28 u32 rw_flags / fsync_flags
 *  80 cq_off: head tail ring_mask ring_entries   32 u64 user_data: returned in the completion
 *             overflow cqes (u32 each)
 *
 * SQ ring (mmap offset 0):   head, tail, mask at sq_off.*; array[sq_entries] of SQE indices at sq_off.array
 * CQ ring (0x8000000, or the same mapping with IORING_FEAT_SINGLE_MMAP): head, tail, mask at cq_off.*,
 *                            cqes[cq_entries] at cq_off.cqes
 * SQE array (0x10000000):    sq_entries x 64 bytes
 * io_uring_register(ring, IORING_REGISTER_FILES, s32 fds[n], n): SQEs with flag IOSQE_FIXED_FILE then
 *                            carry an index into fds instead of a descriptor
 * struct io_uring_cqe (16 bytes): 0 u64 user_data   8 s32 res (bytes or -errno)   12 u32 flags
 * </pre>
 *
 * The application writes SQ tail and CQ head; the kernel writes SQ head and CQ tail. Each side publishes
 * its index with a release store after filling the entries and reads the other's with an acquire load.
 */
final class IoUringLayout {
    static final long SYS_IO_URING_SETUP = 425;
    static final long SYS_IO_URING_ENTER = 426;
    static final long SYS_IO_URING_REGISTER = 427;
    /** io_uring_register opcode: a table of files SQEs then name by index (Linux 5.1). */
    static final int REGISTER_FILES = 2;
    /** io_uring_register opcode: drop the registered files (their references, at once). */
    static final int UNREGISTER_FILES = 3;
    /** io_uring_register: signal this eventfd (its fd in a u32 array of 1) for every completion posted (5.1). */
    static final int REGISTER_EVENTFD = 4;
    /** SQE flag: the fd field is an index into the registered files, not a file descriptor. */
    static final int SQE_FIXED_FILE = 1;

    static final int PARAMS_SIZE = 120;
    static final int PARAMS_SQ_ENTRIES = 0;
    static final int PARAMS_CQ_ENTRIES = 4;
    static final int PARAMS_FEATURES = 20;
    static final int SQ_OFF_HEAD = 40;
    static final int SQ_OFF_TAIL = 44;
    static final int SQ_OFF_RING_MASK = 48;
    static final int SQ_OFF_ARRAY = 64;
    static final int CQ_OFF_HEAD = 80;
    static final int CQ_OFF_TAIL = 84;
    static final int CQ_OFF_RING_MASK = 88;
    static final int CQ_OFF_CQES = 100;

    static final long OFF_SQ_RING = 0L;
    static final long OFF_CQ_RING = 0x8000000L;
    static final long OFF_SQES = 0x10000000L;

    /** The SQ and CQ rings share one mapping (Linux 5.4). */
    static final int FEAT_SINGLE_MMAP = 1;
    /** io_uring_enter: wait until min_complete completions are posted. */
    static final int ENTER_GETEVENTS = 1;

    static final int SQE_SIZE = 64;
    static final int SQE_OPCODE_FLAGS_IOPRIO_FD = 0;
    static final int SQE_OFF = 8;
    static final int SQE_ADDR = 16;
    static final int SQE_LEN_RW_FLAGS = 24;
    static final int SQE_USER_DATA = 32;

    static final int CQE_SIZE = 16;
    static final int CQE_USER_DATA = 0;
    static final int CQE_RES = 8;

    private IoUringLayout() {
    }
}
