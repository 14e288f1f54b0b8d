"""The floor of `python -m vqviz bench ui`: the smallest Streamlit app with one slider, in a
fragment, that changes one image. Streamlit's own round trip; no app can answer a slider faster.

    streamlit run benchmarks/floor_app.py
"""

import numpy as np
import streamlit as st

st.title("Floor")


@st.fragment
def picture() -> None:
    value = st.slider("Value", 0, 100, 50, key="value")
    # a 160 x 160 picture, as large as the style mixer's mixture of an 8 x 8 digit
    ramp = np.add.outer(np.arange(160), np.arange(160)) + value * 2
    st.image((ramp % 256).astype(np.uint8), caption=f"picture {value}")


picture()
