package classify

import (
	"bufio"
	"fmt"
	"os"
	"testing"
)

func TestZZScratch(t *testing.T) {
	c := mustNew(t)
	f, _ := os.Open("/tmp/probe.txt")
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := sc.Text()
		if s == "" {
			continue
		}
		ms := c.Explain(s)
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.RuleID+"{"+m.Text+"}")
		}
		fmt.Printf("%v\t%s\n", ids, s)
	}
}
