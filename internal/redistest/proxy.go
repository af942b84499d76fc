package redistest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy to a Redis server that a test can stall: while
// stalled, the bytes of every connection are held in both directions, as
// with a Redis that stopped answering (CLIENT PAUSE, a network blackhole).
// When a side closes its connection, what was held for it is dropped, as
// Redis drops the commands of a client that went away.
type Proxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
	closed  bool
}

// NewProxy starts a proxy to target for the life of t.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		p.stalled = false
		p.cond.Broadcast()
		p.mu.Unlock()
		ln.Close()
	})
	return p
}

// Addr is the address clients dial instead of the server's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Stall holds every byte from now on until Resume.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// Resume forwards what was held and lets bytes through again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.stalled = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *Proxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client); done <- struct{}{} }()
	go func() { p.pipe(client, server); done <- struct{}{} }()
	<-done
}

// pipe copies src to dst, holding bytes while the proxy is stalled. When
// src ends, both connections close and held bytes are dropped.
func (p *Proxy) pipe(dst, src net.Conn) {
	chunks := make(chan []byte, 1024)
	gone := make(chan struct{})
	go func() {
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- buf[:n]
			}
			if err != nil {
				close(gone)
				p.mu.Lock()
				p.cond.Broadcast() // wake the writer so it sees the end
				p.mu.Unlock()
				return
			}
		}
	}()
	defer func() { dst.Close(); src.Close() }()
	for {
		select {
		case b := <-chunks:
			p.mu.Lock()
			for p.stalled && !p.closed && !isClosed(gone) {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if isClosed(gone) && p.isStalledOrClosed() {
				return // the sender went away while held: drop
			}
			if _, err := dst.Write(b); err != nil {
				return
			}
		case <-gone:
			for {
				select {
				case b := <-chunks:
					if p.isStalledOrClosed() {
						return
					}
					if _, err := dst.Write(b); err != nil {
						return
					}
				default:
					return
				}
			}
		}
	}
}

func (p *Proxy) isStalledOrClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled || p.closed
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
