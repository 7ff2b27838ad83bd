"""SpiNNaker through sPyNNaker: board choice and sPyNNaker configuration (``board``), the
mapping figures (``mapping``), the software emulation of the board's arithmetic
(``emulator``) and the modelled time and energy (``cost``). See docs/spinnaker.md."""
