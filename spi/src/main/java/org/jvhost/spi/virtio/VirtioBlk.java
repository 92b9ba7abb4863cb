package org.jvhost.spi.virtio;

/**
 * virtio-blk constants (virtio 1.2, section 5.2) shared by block devices.
 *
 * <h2>Request ({@code struct virtio_blk_req}, 5.2.6)</h2>
 * <pre>
 *  device-readable                                             (IN: device-writable)    device-writable
 *  0               4               8                               16
 *  +---------------+---------------+-------------------------------+----------------...+--------+
 *  |     type      |   reserved    |            sector             |      data ...     | status |
 *  +---------------+---------------+-------------------------------+----------------...+--------+
 * </pre>
 * The header is the first 16 readable bytes and the status the last writable byte. {@code sector}
 * counts 512-byte sectors whatever the {@code blk_size}. OUT, DISCARD and WRITE_ZEROES carry readable
 * data; IN and GET_ID writable data, before the status byte. The used length the device reports is
 * every byte it wrote, the status byte included.
 *
 * <h2>Discard and write-zeroes segment ({@code struct virtio_blk_discard_write_zeroes})</h2>
 * <pre>
 *  0                               8               12              16
 *  +-------------------------------+---------------+---------------+
 *  |            sector             |  num_sectors  |     flags     |   flags bit 0: unmap
 *  +-------------------------------+---------------+---------------+
 * </pre>
 *
 * <h2>Config space ({@code struct virtio_blk_config}, 5.2.4)</h2>
 * <pre>
 *  0                               8               12              16              20
 *  +-------------------------------+---------------+---------------+---------------+
 *  |           capacity            |   size_max    |    seg_max    |   geometry    |
 *  +-------------------------------+---------------+---------------+---------------+
 *  20              24  25  26      28              32  33  34      36
 *  +---------------+---+---+-------+---------------+---+---+-------+
 *  |   blk_size    |pbe|alo|min_io |    opt_io     |wce| - |num_q  |   (topology: pbe..opt_io)
 *  +---------------+---+---+-------+---------------+---+---+-------+
 *  36              40              44              48              52              56  57      60
 *  +---------------+---------------+---------------+---------------+---------------+---+-------+
 *  |max_discard_sec|max_discard_seg|discard_align  |max_wz_sectors |  max_wz_seg   |wzu|   -   |
 *  +---------------+---------------+---------------+---------------+---------------+---+-------+
 * </pre>
 * {@code capacity} counts 512-byte sectors. QEMU 7.2 reads the first 57 bytes (through
 * {@code write_zeroes_may_unmap}).
 *
 * @since SPI 1.4
 */
public final class VirtioBlk {
    /** Virtio device id of a block device. */
    public static final int DEVICE_ID = 2;

    public static final long F_SIZE_MAX = 1L << 1;
    public static final long F_SEG_MAX = 1L << 2;
    public static final long F_GEOMETRY = 1L << 4;
    public static final long F_RO = 1L << 5;
    public static final long F_BLK_SIZE = 1L << 6;
    public static final long F_FLUSH = 1L << 9;
    public static final long F_TOPOLOGY = 1L << 10;
    public static final long F_CONFIG_WCE = 1L << 11;
    public static final long F_MQ = 1L << 12;
    public static final long F_DISCARD = 1L << 13;
    public static final long F_WRITE_ZEROES = 1L << 14;

    /** Request types. */
    public static final int T_IN = 0;
    public static final int T_OUT = 1;
    public static final int T_FLUSH = 4;
    public static final int T_GET_ID = 8;
    public static final int T_DISCARD = 11;
    public static final int T_WRITE_ZEROES = 13;

    /** Status byte values. */
    public static final int S_OK = 0;
    public static final int S_IOERR = 1;
    public static final int S_UNSUPP = 2;

    /** The request header's length and fields. */
    public static final int REQ_HDR_LEN = 16;
    public static final int REQ_TYPE = 0;
    public static final int REQ_SECTOR = 8;

    /** The unit of {@code sector} and {@code capacity}. */
    public static final int SECTOR_SIZE = 512;
    public static final int SECTOR_SHIFT = 9;
    /** GET_ID's answer: an ASCII serial of at most 20 bytes, not NUL-terminated if 20 long. */
    public static final int ID_BYTES = 20;

    /** One discard/write-zeroes segment and its fields. */
    public static final int DWZ_SEGMENT_LEN = 16;
    public static final int DWZ_SECTOR = 0;
    public static final int DWZ_NUM_SECTORS = 8;
    public static final int DWZ_FLAGS = 12;
    public static final int DWZ_F_UNMAP = 1;

    /** Config space offsets. */
    public static final int CONFIG_CAPACITY = 0;
    public static final int CONFIG_SIZE_MAX = 8;
    public static final int CONFIG_SEG_MAX = 12;
    public static final int CONFIG_GEOMETRY = 16;
    public static final int CONFIG_BLK_SIZE = 20;
    public static final int CONFIG_PHYSICAL_BLOCK_EXP = 24;
    public static final int CONFIG_ALIGNMENT_OFFSET = 25;
    public static final int CONFIG_MIN_IO_SIZE = 26;
    public static final int CONFIG_OPT_IO_SIZE = 28;
    public static final int CONFIG_WRITEBACK = 32;
    public static final int CONFIG_NUM_QUEUES = 34;
    public static final int CONFIG_MAX_DISCARD_SECTORS = 36;
    public static final int CONFIG_MAX_DISCARD_SEG = 40;
    public static final int CONFIG_DISCARD_SECTOR_ALIGNMENT = 44;
    public static final int CONFIG_MAX_WRITE_ZEROES_SECTORS = 48;
    public static final int CONFIG_MAX_WRITE_ZEROES_SEG = 52;
    public static final int CONFIG_WRITE_ZEROES_MAY_UNMAP = 56;
    /** Config space length through {@code write_zeroes_may_unmap}, padded to 4 bytes. */
    public static final int CONFIG_SIZE = 60;

    private VirtioBlk() {
    }
}
