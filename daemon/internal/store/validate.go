package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// This file checks the structure of a bbolt file by reading it with ReadAt,
// before bbolt maps it. bbolt trusts its pages: a damaged page can make it
// panic in a goroutine of its own (tx.Check in v1.4, the freelist rebuild),
// fault on the mapping, allocate without bound, or loop for hours on a huge
// overflow count. Everything bbolt will dereference at Open, in the walk and
// in tx.Check is checked here first with ordinary bounds-checked reads, so a
// damaged file is refused before bbolt touches it.
//
// The layout is bbolt's file format version 2 (go.etcd.io/bbolt/internal/common),
// in the machine's byte order: every page starts with a 16-byte header
// {id u64, flags u16, count u16, overflow u32}; the meta page holds
// {magic u32, version u32, pageSize u32, flags u32, root {pgid u64, sequence u64},
// freelist u64, pgid u64, txid u64, checksum u64} after the header, the
// checksum being FNV-64a of the 56 bytes before it; branch elements are
// {pos u32, ksize u32, pgid u64} and leaf elements {flags u32, pos u32,
// ksize u32, vsize u32}, pos counting from the element itself; a bucket is a
// leaf value with flag 0x01 holding {root u64, sequence u64}, followed by an
// inline leaf page when root is 0.

const (
	pageHeaderSize   = 16
	elementSize      = 16 // branch and leaf elements alike
	bucketHeaderSize = 16
	metaChecksumOff  = 56
	metaSize         = 64

	boltMagic   uint32 = 0xED0CDAED
	boltVersion uint32 = 2

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10

	bucketLeafFlag = 0x01
	noFreelist     = ^uint64(0)

	// maxInlineDepth bounds nested inline buckets (values shrink at every
	// level, so this is only a guard).
	maxInlineDepth = 64
)

var ne = binary.NativeEndian

type boltMeta struct {
	magic, version, pageSize  uint32
	root, freelist, hwm, txid uint64
}

// parseMeta reads the meta page held in page (which starts with the page
// header) and validates it as bbolt's Meta.Validate does.
func parseMeta(page []byte) (boltMeta, error) {
	if len(page) < pageHeaderSize+metaSize {
		return boltMeta{}, errors.New("meta page too short")
	}
	b := page[pageHeaderSize : pageHeaderSize+metaSize]
	m := boltMeta{
		magic:    ne.Uint32(b[0:]),
		version:  ne.Uint32(b[4:]),
		pageSize: ne.Uint32(b[8:]),
		root:     ne.Uint64(b[16:]),
		freelist: ne.Uint64(b[32:]),
		hwm:      ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}
	h := fnv.New64a()
	_, _ = h.Write(b[:metaChecksumOff])
	switch {
	case m.magic != boltMagic:
		return m, errors.New("not a bbolt file (bad magic)")
	case m.version != boltVersion:
		return m, fmt.Errorf("unsupported bbolt format version %d", m.version)
	case h.Sum64() != ne.Uint64(b[metaChecksumOff:]):
		return m, errors.New("meta page checksum mismatch")
	}
	return m, nil
}

type fileChecker struct {
	r    io.ReaderAt
	size uint64
	ps   uint64
	hwm  uint64
	seen map[uint64]bool
}

// checkFile validates the structure of the bbolt file open as f. An empty
// file is fine (bbolt initialises it); any other problem is a damageError.
func checkFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if fi.Size() == 0 {
		return nil
	}
	c := &fileChecker{r: f, size: uint64(fi.Size()), seen: map[uint64]bool{}}
	err = c.check()
	var (
		d  *damageError
		re *readError
	)
	switch {
	case err == nil, errors.As(err, &d), errors.As(err, &re):
		return err
	}
	return &damageError{reason: err.Error()}
}

func (c *fileChecker) read(off, n uint64) ([]byte, error) {
	if off > c.size || n > c.size-off {
		return nil, fmt.Errorf("%d bytes at offset %d lie beyond the end of the file (%d bytes)", n, off, c.size)
	}
	buf := make([]byte, n)
	if _, err := c.r.ReadAt(buf, int64(off)); err != nil {
		return nil, &readError{err}
	}
	return buf, nil
}

// readError is an I/O error, not damage: Open reports it instead of
// quarantining the file.
type readError struct{ err error }

func (e *readError) Error() string { return "read state file: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// pageSize finds the page size as bbolt's getPageSize does: from the first
// meta page, else from a second meta page at a power-of-two offset.
func (c *fileChecker) pageSize() (uint64, error) {
	if b, err := c.read(0, 0x1000); err == nil {
		if m, err := parseMeta(b); err == nil {
			return uint64(m.pageSize), nil
		}
	}
	for i := 0; i <= 14; i++ {
		pos := uint64(1024) << i
		if pos+1024 >= c.size {
			break
		}
		n := min(uint64(0x1000), c.size-pos)
		b, err := c.read(pos, n)
		if err != nil {
			continue
		}
		if m, err := parseMeta(b); err == nil {
			return uint64(m.pageSize), nil
		}
	}
	return 0, errors.New("no valid meta page")
}

func (c *fileChecker) check() error {
	ps, err := c.pageSize()
	if err != nil {
		return err
	}
	if ps < 1024 || ps > 1<<24 {
		return fmt.Errorf("implausible page size %d", ps)
	}
	c.ps = ps
	if c.size < 2*ps {
		return fmt.Errorf("file size too small (%d bytes)", c.size)
	}

	// Choose the meta page as bbolt's db.meta does: the higher txid if it
	// is valid, else the other one.
	var metas [2]boltMeta
	var errs [2]error
	for i := range metas {
		page, err := c.read(uint64(i)*ps, ps)
		if err != nil {
			return err
		}
		// tx.Check asserts both meta pages' headers.
		if id, flags := ne.Uint64(page[0:]), ne.Uint16(page[8:]); id != uint64(i) || flags != flagMeta {
			return fmt.Errorf("meta page %d has a damaged header (id %d, flags %#x)", i, id, flags)
		}
		metas[i], errs[i] = parseMeta(page)
	}
	a, b := 0, 1
	if metas[1].txid > metas[0].txid {
		a, b = 1, 0
	}
	var m boltMeta
	switch {
	case errs[a] == nil:
		m = metas[a]
	case errs[b] == nil:
		m = metas[b]
	default:
		return fmt.Errorf("both meta pages are invalid: %v", errs[0])
	}
	if uint64(m.pageSize) != ps {
		return fmt.Errorf("meta page size %d disagrees with %d", m.pageSize, ps)
	}
	c.hwm = m.hwm
	c.seen[0], c.seen[1] = true, true

	if m.freelist != noFreelist {
		if err := c.checkFreelist(m.freelist); err != nil {
			return err
		}
	}
	if m.root < 2 {
		return fmt.Errorf("root bucket at page %d", m.root)
	}
	return c.checkTree(m.root)
}

// page reads page id and its overflow pages, checking that they lie below
// the high-water mark and in the file, that no other page claimed them, and
// that the header is bbolt's idea of a page of this id.
func (c *fileChecker) page(id uint64, wantFlags ...uint16) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("page %d outside [2, %d)", id, c.hwm)
	}
	filePages := c.size / c.ps
	if id >= filePages {
		return nil, fmt.Errorf("page %d lies beyond the end of the file (%d pages)", id, filePages)
	}
	hdr, err := c.read(id*c.ps, pageHeaderSize)
	if err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	gotID, flags, overflow := ne.Uint64(hdr[0:]), ne.Uint16(hdr[8:]), uint64(ne.Uint32(hdr[12:]))
	if gotID != id {
		return nil, fmt.Errorf("page %d identifies itself as page %d", id, gotID)
	}
	okFlags := false
	for _, f := range wantFlags {
		okFlags = okFlags || flags == f
	}
	if !okFlags {
		return nil, fmt.Errorf("page %d has unexpected type flags %#x", id, flags)
	}
	if overflow >= c.hwm-id || overflow >= filePages-id {
		return nil, fmt.Errorf("page %d overflows %d pages past the high-water mark %d or the end of the file", id, overflow, c.hwm)
	}
	for p := id; p <= id+overflow; p++ {
		if c.seen[p] {
			return nil, fmt.Errorf("page %d is referenced twice", p)
		}
		c.seen[p] = true
	}
	buf, err := c.read(id*c.ps, (overflow+1)*c.ps)
	if err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

func (c *fileChecker) checkFreelist(id uint64) error {
	p, err := c.page(id, flagFreelist)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	start, count := uint64(pageHeaderSize), uint64(ne.Uint16(p[10:]))
	if count == 0xFFFF {
		if len(p) < pageHeaderSize+8 {
			return errors.New("freelist: page too short")
		}
		count = ne.Uint64(p[pageHeaderSize:])
		start += 8
	}
	if count > (uint64(len(p))-start)/8 {
		return fmt.Errorf("freelist: %d ids do not fit in page %d", count, id)
	}
	for i := range count {
		if free := ne.Uint64(p[start+8*i:]); free < 2 || free >= c.hwm {
			return fmt.Errorf("freelist: free page %d outside [2, %d)", free, c.hwm)
		}
	}
	return nil
}

// checkTree walks every page of the bucket tree rooted at root, and of the
// buckets inside it, without recursion; seen makes cycles impossible.
func (c *fileChecker) checkTree(root uint64) error {
	stack := []uint64{root}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p, err := c.page(id, flagBranch, flagLeaf)
		if err != nil {
			return err
		}
		if ne.Uint16(p[8:]) == flagLeaf {
			if stack, err = c.checkLeaf(p, stack, 0); err != nil {
				return fmt.Errorf("page %d: %w", id, err)
			}
			continue
		}
		count := uint64(ne.Uint16(p[10:]))
		if count == 0 || count > (uint64(len(p))-pageHeaderSize)/elementSize {
			return fmt.Errorf("branch page %d: implausible element count %d", id, count)
		}
		for i := range count {
			off := pageHeaderSize + i*elementSize
			e := p[off:]
			pos, ksize, child := uint64(ne.Uint32(e[0:])), uint64(ne.Uint32(e[4:])), ne.Uint64(e[8:])
			if off+pos+ksize > uint64(len(p)) {
				return fmt.Errorf("branch page %d: key %d lies outside the page", id, i)
			}
			stack = append(stack, child)
		}
	}
	return nil
}

// checkLeaf checks the elements of a leaf page (a real one or an inline
// bucket's) and queues the root pages of the buckets it holds.
func (c *fileChecker) checkLeaf(p []byte, stack []uint64, depth int) ([]uint64, error) {
	if uint64(len(p)) < pageHeaderSize {
		return stack, errors.New("leaf shorter than a page header")
	}
	count := uint64(ne.Uint16(p[10:]))
	if count > (uint64(len(p))-pageHeaderSize)/elementSize {
		return stack, fmt.Errorf("implausible element count %d", count)
	}
	for i := range count {
		off := pageHeaderSize + i*elementSize
		e := p[off:]
		flags := ne.Uint32(e[0:])
		pos, ksize, vsize := uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		end := off + pos + ksize + vsize
		if end > uint64(len(p)) {
			return stack, fmt.Errorf("element %d lies outside the page", i)
		}
		if flags&bucketLeafFlag == 0 {
			continue
		}
		v := p[off+pos+ksize : end]
		if len(v) < bucketHeaderSize {
			return stack, fmt.Errorf("element %d: bucket header too short", i)
		}
		if root := ne.Uint64(v[0:]); root != 0 {
			stack = append(stack, root)
			continue
		}
		inline := v[bucketHeaderSize:]
		if len(inline) < pageHeaderSize || ne.Uint16(inline[8:]) != flagLeaf {
			return stack, fmt.Errorf("element %d: damaged inline bucket", i)
		}
		if depth >= maxInlineDepth {
			return stack, errors.New("inline buckets nested too deep")
		}
		var err error
		if stack, err = c.checkLeaf(inline, stack, depth+1); err != nil {
			return stack, fmt.Errorf("inline bucket %d: %w", i, err)
		}
	}
	return stack, nil
}
