"""Evaluation: role metrics offline on the test split and closed-loop in the simulator, with\nbootstrap confidence intervals and paired differences.\n"""
