"""Scoring detections: MiGA and one-to-one F1, ActivityNet mAP, prediction files, score reports."""
