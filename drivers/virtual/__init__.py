"""Virtual devices: real programs over real stacks (sockets, pty, pcscd) that stand in for hardware."""
