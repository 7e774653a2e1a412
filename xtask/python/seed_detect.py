"""The original tool's `detect`, as ../shared/docs/seed-reference.md describes it
(pandas features + scikit-learn IsolationForest), used by `cargo xtask bench`
as the anchor that ml-sniffing's figures are compared with, side by side.

Usage: python3 seed_detect.py INPUT.csv OUTPUT.csv
"""
import sys
from ipaddress import ip_address, ip_network

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

PRIVATE = (ip_network("10.0.0.0/8"), ip_network("172.16.0.0/12"), ip_network("192.168.0.0/16"))


def ip_int(ip):
    try:
        return int(ip_address(ip))
    except ValueError:
        return 0


def private(ip):
    try:
        address = ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in PRIVATE)


def main(src, dst):
    df = pd.read_csv(src)
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s", errors="coerce")
    df["hour"] = df["timestamp"].dt.hour.fillna(0).astype(int)
    df["day_of_week"] = df["timestamp"].dt.day_of_week.fillna(0).astype(int)
    df["minute"] = df["timestamp"].dt.minute.fillna(0).astype(int)
    df["source_ip_int"] = df["source_ip"].apply(ip_int)
    df["destination_ip_int"] = df["destination_ip"].apply(ip_int)
    df["source_is_private"] = df["source_ip"].apply(private).astype(int)
    df["destination_is_private"] = df["destination_ip"].apply(private).astype(int)
    df["protocol"] = df["protocol"].astype(str).str.lower()
    df["protocol_code"] = df["protocol"].astype("category").cat.codes.astype(int)
    df["flow_id"] = df["source_ip"].astype(str) + "->" + df["destination_ip"].astype(str) + ":" + df["protocol"]
    stats = df.groupby("flow_id")["length"].agg(["count", "mean"])
    stats = stats.rename(columns={"count": "flow_packet_count", "mean": "flow_avg_length"})
    df = df.join(stats, on="flow_id")
    df["flow_packet_count"] = df["flow_packet_count"].fillna(1)
    df["flow_avg_length"] = df["flow_avg_length"].fillna(df["length"])
    columns = ["length", "hour", "day_of_week", "minute", "source_ip_int", "destination_ip_int",
               "source_is_private", "destination_is_private", "protocol_code", "flow_packet_count",
               "flow_avg_length"]
    features = df[columns].astype(np.float64).replace([np.inf, -np.inf], np.nan).fillna(0)
    model = IsolationForest(n_estimators=200, contamination=0.05, random_state=42, n_jobs=-1)
    model.fit(features)
    df["anomaly_score"] = model.decision_function(features)
    df["is_anomaly"] = model.predict(features) == -1
    df = df.sort_values("anomaly_score")
    df.to_csv(dst, index=False)
    print("Anomaly scores written to", dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
