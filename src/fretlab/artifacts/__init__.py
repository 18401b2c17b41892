"""What training leaves behind: the model directory and its model card."""
