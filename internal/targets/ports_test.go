package targets

import (
	"slices"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint16
		wantErr string
	}{
		{in: "11434", want: []uint16{11434}},
		{in: "11434,8000-8003", want: []uint16{11434, 8000, 8001, 8002, 8003}},
		{in: " 80 , 443 ,80", want: []uint16{80, 443}},
		{in: "8002,8000-8003", want: []uint16{8002, 8000, 8001, 8003}},
		{in: "65535", want: []uint16{65535}},
		{in: "5-5", want: []uint16{5}},
		{in: "", wantErr: "port list is empty"},
		{in: "80,,443", wantErr: "empty entry"},
		{in: "0", wantErr: `port "0" is not a number from 1 to 65535`},
		{in: "65536", wantErr: `port "65536"`},
		{in: "http", wantErr: `port "http"`},
		{in: "-80", wantErr: `port ""`},
		{in: "+80", wantErr: `port "+80"`},
		{in: "90-80", wantErr: `range "90-80" ends before it starts`},
		{in: "80-", wantErr: `port ""`},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePorts(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParsePorts(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
	all, err := ParsePorts("1-65535")
	if err != nil || len(all) != 65535 || all[0] != 1 || all[65534] != 65535 {
		t.Errorf("ParsePorts(1-65535): %d ports, %v", len(all), err)
	}
}

func TestDefaultPortTable(t *testing.T) {
	tab, err := DefaultPortTable()
	if err != nil {
		t.Fatal(err)
	}
	if tab.Version < 1 {
		t.Errorf("version = %d", tab.Version)
	}
	ports := DefaultPorts
	if len(ports) != len(tab.Ports) {
		t.Fatalf("DefaultPorts has %d ports, table %d", len(ports), len(tab.Ports))
	}
	// Every entry is a valid, distinct port with servers and a fact, and the
	// ports the package documents are there.
	for _, want := range []uint16{11434, 8000, 8080, 1234, 5000, 5001, 7860, 3000, 4000, 9997, 30000, 1337, 4891, 80, 443} {
		if !slices.Contains(ports, want) {
			t.Errorf("default ports lack %d", want)
		}
	}
	for _, e := range tab.Ports {
		if e.Port == 0 || len(e.Servers) == 0 || e.Fact == "" {
			t.Errorf("incomplete entry %+v", e)
		}
	}
	for i, e := range tab.Ports {
		if ports[i] != e.Port {
			t.Errorf("DefaultPorts[%d] = %d, table says %d", i, ports[i], e.Port)
		}
	}
}

func TestDecodePortTableRejects(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no version", "ports:\n  - {port: 1, servers: [x], fact: y}\n", "missing version"},
		{"no ports", "version: 1\nports: []\n", "no ports"},
		{"zero", "version: 1\nports:\n  - {port: 0, servers: [x], fact: y}\n", "port 0"},
		{"dup", "version: 1\nports:\n  - {port: 80, servers: [x], fact: y}\n  - {port: 80, servers: [x], fact: y}\n", "listed twice"},
		{"no fact", "version: 1\nports:\n  - {port: 80, servers: [x]}\n", "needs servers and a fact"},
		{"unknown field", "version: 1\nports:\n  - {port: 80, servers: [x], fact: y, extra: 1}\n", "extra"},
		{"too big", "version: 1\nports:\n  - {port: 70000, servers: [x], fact: y}\n", "70000"},
	}
	for _, tt := range tests {
		_, err := decodePortTable([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}
