"""The slow tests (`-m slow`): generated projects installed and run, images, servers."""
