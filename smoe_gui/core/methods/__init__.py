"""The initialisation methods: one module (or package) per method behind one protocol, and what "
"they share (experts, kernel-budget planning, stage drawing)."""
