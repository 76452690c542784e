"""Reading, writing and checking datasets: annotations, feature files, label augmentation."""
