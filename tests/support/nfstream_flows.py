"""Writes NFStream's flows of the Nth capture to OUT_DIR/N.csv, in
its statistical mode without dissection, with ml-sniffing's default
timeouts: python nfstream_flows.py OUT_DIR CAPTURE..."""
import os
import sys

from nfstream import NFStreamer

out_dir = sys.argv[1]
for n, capture in enumerate(sys.argv[2:]):
    flows = NFStreamer(
        source=capture,
        statistical_analysis=True,
        n_dissections=0,
        splt_analysis=0,
        decode_tunnels=False,
        idle_timeout=120,
        active_timeout=1800,
    ).to_pandas()
    flows.to_csv(os.path.join(out_dir, f"{n}.csv"), index=False)
