"""Peak GPU memory of LoRA/QLoRA training, predicted from the config alone (no torch).

``estimate`` holds the formulas, ``gpus`` the cards, ``facts`` what rules read,
``suggestions`` the changes that fit; ``measure`` (torch) checks the formulas on a real step.
"""
