package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Field limits of the gossip metadata. memberlist refuses node metadata over
// 512 bytes (memberlist.MetaMaxSize) and every node carries its metadata in
// every alive message, so each field has a maximum, chosen so that a node
// with every field at its maximum still fits (TestMetaLargest proves it,
// with maxMetaLen bytes, leaving room for fields added later):
//
//   - names, regions and versions follow the catalog's column sizes;
//   - addresses allow a host of 114 characters with a scheme and a port
//     ("https://" + host + ":65535"). A DNS name may reach 253 characters,
//     but two of them cannot fit next to the rest in 512 bytes; real host
//     names are far shorter, and nodes usually advertise IP addresses;
//   - Weir has three roles (server, worker, agent); four leave room for one.
//
// A value over its limit is refused at New with the field's name, never
// truncated.
const (
	MaxNodeNameLen  = 128 // catalog nodes.id
	MaxRegionLen    = 64  // catalog nodes.region
	MaxRoles        = 4
	MaxRoleLen      = 16
	MaxAPIAddrLen   = 128
	MaxAgentAddrLen = 120
	MaxVersionLen   = 64 // catalog nodes.version
	MaxCapacity     = 65535
)

// metaVersion is the version of the metadata encoding written by this code.
const metaVersion = 1

// maxMetaLen is the encoded size of the largest metadata Config allows:
// version and flags (2), capacity (3 as a uvarint), start time (8), region
// (1+64), API address (2+128), agent address (1+120), version (1+64), role
// count (1) and roles (4 x (1+16)).
const maxMetaLen = 2 + 3 + 8 + (1 + MaxRegionLen) + (2 + MaxAPIAddrLen) + (1 + MaxAgentAddrLen) +
	(1 + MaxVersionLen) + 1 + MaxRoles*(1+MaxRoleLen)

// meta is what a node tells the pool about itself.
type meta struct {
	Region    string
	Roles     []string
	APIAddr   string
	AgentAddr string
	Version   string
	Capacity  int
	Started   int64 // Unix nanoseconds: tells a restarted node from its previous life
}

// meta returns the metadata c describes, started now.
func (c Config) meta() meta {
	return meta{Region: c.Region, Roles: c.Roles, APIAddr: c.APIAddr, AgentAddr: c.AgentAddr,
		Version: c.Version, Capacity: c.Capacity}
}

// encode writes m in the compact binary form of version 1:
//
//	byte    version (1)
//	byte    flags (0; reserved)
//	uvarint capacity
//	int64   start time, Unix nanoseconds, big endian
//	string  region, API address, agent address, version
//	uvarint number of roles, then one string each
//
// where a string is a uvarint length and its bytes. Later versions only
// append fields, so a decoder reads the fields it knows and ignores the rest.
func (m meta) encode() []byte {
	b := make([]byte, 0, 64+len(m.Region)+len(m.APIAddr)+len(m.AgentAddr)+len(m.Version))
	b = append(b, metaVersion, 0)
	b = binary.AppendUvarint(b, uint64(m.Capacity))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Started))
	for _, s := range []string{m.Region, m.APIAddr, m.AgentAddr, m.Version} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Roles)))
	for _, r := range m.Roles {
		b = appendString(b, r)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errMetaTruncated reports metadata that ends inside a field.
var errMetaTruncated = errors.New("truncated")

// decodeMeta reads metadata written by encode (of this or a later version).
func decodeMeta(b []byte) (meta, error) {
	var m meta
	d := metaDecoder{b: b}
	v := d.byte()
	if d.err == nil && v < 1 {
		return m, fmt.Errorf("decode node metadata: unknown version %d", v)
	}
	d.byte() // flags: none defined in version 1
	capacity := d.uvarint()
	m.Started = int64(d.uint64())
	m.Region = d.string()
	m.APIAddr = d.string()
	m.AgentAddr = d.string()
	m.Version = d.string()
	n := d.uvarint()
	if d.err == nil && n > MaxRoles*4 {
		return m, fmt.Errorf("decode node metadata: %d roles", n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		m.Roles = append(m.Roles, d.string())
	}
	if d.err != nil {
		return meta{}, fmt.Errorf("decode node metadata at byte %d: %w", d.off, d.err)
	}
	if capacity > MaxCapacity {
		return meta{}, fmt.Errorf("decode node metadata: capacity %d over %d", capacity, MaxCapacity)
	}
	m.Capacity = int(capacity)
	return m, nil
}

type metaDecoder struct {
	b   []byte
	off int
	err error
}

func (d *metaDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.err = errMetaTruncated
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *metaDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = errMetaTruncated
		if n < 0 {
			d.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	d.off += n
	return v
}

func (d *metaDecoder) uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.err = errMetaTruncated
		return 0
	}
	d.off += 8
	return binary.BigEndian.Uint64(d.b[d.off-8:])
}

func (d *metaDecoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)-d.off) {
		d.err = errMetaTruncated
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

// startedTime converts a start stamp to a time.
func startedTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
