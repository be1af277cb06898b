package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math/bits"
	"testing"
)

// decodeXWD decodes an X Window Dump (xwd -root) of a TrueColor ZPixmap
// with 24 or 32 bits per pixel, which is what Xvfb -screen 0 WxHx24 gives.
func decodeXWD(r io.Reader) (image.Image, error) {
	var h [25]uint32
	if err := binary.Read(r, binary.BigEndian, &h); err != nil {
		return nil, fmt.Errorf("xwd header: %w", err)
	}
	headerSize, version, format := h[0], h[1], h[2]
	width, height := int(h[4]), int(h[5])
	byteOrder, bpp, bpl := h[7], int(h[11]), int(h[12])
	rMask, gMask, bMask := h[14], h[15], h[16]
	ncolors := h[19]
	if version != 7 || format != 2 {
		return nil, fmt.Errorf("xwd version %d format %d: only version 7 ZPixmap is supported", version, format)
	}
	if bpp != 32 && bpp != 24 {
		return nil, fmt.Errorf("xwd: %d bits per pixel is not supported", bpp)
	}
	if headerSize < 100 || width <= 0 || height <= 0 || bpl < width*bpp/8 {
		return nil, errors.New("xwd: bad header")
	}
	if _, err := io.CopyN(io.Discard, r, int64(headerSize-100)+int64(ncolors)*12); err != nil {
		return nil, fmt.Errorf("xwd window name and colormap: %w", err)
	}
	chan8 := func(p, mask uint32) uint8 {
		if mask == 0 {
			return 0
		}
		v := (p & mask) >> bits.TrailingZeros32(mask)
		max := mask >> bits.TrailingZeros32(mask)
		return uint8(v * 255 / max)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	line := make([]byte, bpl)
	step := bpp / 8
	for y := 0; y < height; y++ {
		if _, err := io.ReadFull(r, line); err != nil {
			return nil, fmt.Errorf("xwd pixels, line %d: %w", y, err)
		}
		for x := 0; x < width; x++ {
			b := line[x*step : x*step+step]
			var p uint32
			if byteOrder == 0 { // LSBFirst
				for i := step - 1; i >= 0; i-- {
					p = p<<8 | uint32(b[i])
				}
			} else {
				for i := 0; i < step; i++ {
					p = p<<8 | uint32(b[i])
				}
			}
			img.SetRGBA(x, y, color.RGBA{chan8(p, rMask), chan8(p, gMask), chan8(p, bMask), 255})
		}
	}
	return img, nil
}

func TestDecodeXWD(t *testing.T) {
	// A 2x1 TrueColor ZPixmap, 32 bits per pixel, LSB first, as Xvfb
	// writes it: a red pixel, then a blue one.
	var b bytes.Buffer
	name := "root\x00"
	h := [25]uint32{100 + uint32(len(name)), 7, 2, 24, 2, 1, 0, 0, 32, 0, 32, 32, 8, 4, 0xff0000, 0xff00, 0xff, 8, 256, 0, 2, 1, 0, 0, 0}
	_ = binary.Write(&b, binary.BigEndian, h)
	b.WriteString(name)
	b.Write([]byte{0x00, 0x00, 0xff, 0x00, 0xff, 0x00, 0x00, 0x00})
	img, err := decodeXWD(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.At(0, 0).(color.RGBA); got != (color.RGBA{255, 0, 0, 255}) {
		t.Errorf("pixel 0 = %v, want red", got)
	}
	if got := img.At(1, 0).(color.RGBA); got != (color.RGBA{0, 0, 255, 255}) {
		t.Errorf("pixel 1 = %v, want blue", got)
	}
	h[2] = 1 // XYPixmap
	var bad bytes.Buffer
	_ = binary.Write(&bad, binary.BigEndian, h)
	if _, err := decodeXWD(&bad); err == nil {
		t.Error("an XYPixmap must be refused")
	}
}
