"""Style mixer: decoded convex mixtures α1 z1 + α2 z2 + α3 z3 of three latents (the SEQ paper's Fig. 5).

The sliders and the mixture are the map component's mixer view: the three latents and the decoder go to
the browser once, and each slider step is decoded there (:mod:`vqviz_app.decoding`)."""

import base64

import numpy as np
import streamlit as st

from vqviz import analysis
from vqviz.images import framed, png_bytes

from vqviz_app import cache, decoding, mapview, maps, sidebar, widgets
from vqviz_app.state import Context, Loaded, Session, session

SOURCES = {"clusters of one class": "Styles of one class", "one cluster": "One cluster", "random": "At random",
           "map": "Click in the map"}
#: The sliders' range and step: every mixture they reach is decoded at once when a triplet is chosen
#: (the server's pictures, where the browser cannot decode, and the download).
TOP, STEP = 1.0, 0.01
DEFAULT_ALPHA = (0.25, 0.25)
#: The mixer's element (its key).
MIXER = "mixer"


def render(ctx: Context) -> None:
    loaded = sidebar.loaded(ctx)
    table, classes = loaded.table, loaded.classes
    st.title("Style mixer")
    st.caption("Three latents z1, z2, z3 and their mixture z = α1 z1 + α2 z2 + α3 z3 with α3 = 1 − α1 − α2, "
               "decoded. Mixing the clusters of one class blends its styles (the SEQ paper, section 3.3, whose "
               "figures keep α1 and α2 below 0.5). Each weight goes from 0 to 1 here: α1 = 1 shows z1 alone.")
    if widgets.no_decoder(loaded, "no mixture of its latents can be drawn. The latent map and the cluster "
                                  "styles show its clusters through their members"):
        return
    widgets.decoder_warning(loaded)

    sources = list(SOURCES) if table.has_clusters else ["random", "map"]
    top = st.columns([3, 2, 1], vertical_alignment="bottom")
    source = top[0].segmented_control("Take three latents", sources, format_func=SOURCES.get, default=sources[0],
                                      required=True, key=Session.mix_source.key, persist_state="session")
    choice = None
    if source == "clusters of one class":
        groups = analysis.cluster_table(table)
        labels = sorted((c for c in groups if c >= 0), key=lambda c: -len(groups[c]))
        choice = top[1].selectbox("Class", labels, format_func=lambda c: f"{classes[c]} ({widgets.plural(len(groups[c]), 'cluster')})",
                                  key=Session.mix_class.key, persist_state="session")
    elif source == "one cluster":
        ks = [int(k) for k in np.argsort(-table.sizes, kind="stable") if table.sizes[k] > 0]
        choice = top[1].selectbox("Cluster", ks, key=Session.mix_cluster.key, persist_state="session",
                                  format_func=lambda k: f"{k} (label {classes[table.cluster_labels[k]]}, "
                                                        f"{widgets.plural(table.sizes[k], 'member')})")
    if source != "map" and top[2].button("Draw again", icon=":material/casino:", width="stretch"):
        session.mix_seed += 1
    if session.mix_of != (ctx.entry.path, ctx.dataset, ctx.split):  # rows belong to one split
        session.mix_of = (ctx.entry.path, ctx.dataset, ctx.split)
        session.mix_rows = analysis.pick_triplet(table, "random").tolist()
        del session.mix_for
    wanted = (source, choice, session.mix_seed)
    if source == "map":
        del session.mix_for
    elif session.mix_for != wanted:
        session.mix_rows = analysis.pick_triplet(table, source, wanted[-1], cluster=choice, label=choice).tolist()
        session.mix_for = wanted
    rows = np.asarray(session.mix_rows)

    if source == "map":
        st.caption("Each click replaces the oldest of the three latents.")
        maps.draw_picker(loaded, ctx.colour, rows, Session.mix_rows, keep=3)

    h = loaded.data.images.shape[-2]
    left, right = st.columns([5, 4], gap="large")
    with left:
        cols = st.columns(3)
        for i, (col, picture) in enumerate(zip(cols, framed(loaded.data.images[rows], cache.scale_for(h, 72)))):
            r = rows[i]
            where = f" · cluster {table.clusters[r]}" if table.has_clusters else ""
            col.image(picture, caption=f"z{i + 1} · {classes[table.labels[r]]} · sample {r}{where}")
        _mixer(loaded, tuple(int(r) for r in rows), cache.scale_for(h, 160))
    with right:
        steps = st.slider("Mixtures along each side of the triangle", 3, 11, 6, key=Session.mix_steps.key,
                          persist_state="session")
        picture = analysis.mixing_picture(loaded.model, table.latents[rows], steps, scale=cache.scale_for(h, 48))
        st.image(picture, caption=f"{steps * (steps + 1) // 2} mixtures: z1 top left, z2 top right, z3 bottom "
                                  f"right; each step moves 1/{steps - 1} of the weight (the SEQ paper's Fig. 5)")
        st.download_button("Download as PNG", png_bytes(picture), file_name="vqviz-mixtures.png",
                           mime="image/png", icon=":material/download:")


@st.fragment
def _mixer(loaded: Loaded, rows: tuple[int, ...], scale: int) -> None:
    """The sliders and their mixture, in the browser: each step is decoded there. Only this part reruns
    when the sliders come to rest (the server keeps the weights, for the download and the next visit),
    or, where the server decodes, at each step."""
    sent = decoding.decoder(loaded)
    _, failed = mapview.mixer_state(MIXER)
    why = sent.why or failed
    a1, a2 = session.mixer_alpha or DEFAULT_ALPHA
    images = cache.slider_grid(loaded.view, rows)
    image = images[round(a1 / STEP), round(a2 / STEP)]
    picture = None
    if why:  # the server decodes: its picture of the mixture at the weights it holds
        picture = "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()
    mapview.mixer_view(key=MIXER, latents=loaded.table.latents[list(rows)], shape=loaded.data.images.shape[1:],
                       scale=scale, alpha=(a1, a2), step=STEP, decoder=None if why else sent.blob, why=why,
                       image=picture, on_change=_keep_alpha)
    big = image.repeat(4, 0).repeat(4, 1)
    st.download_button(f"Download {a1:.2f} z1 + {a2:.2f} z2 + {abs(1 - a1 - a2):.2f} z3 as PNG", png_bytes(big),
                       file_name="vqviz-mixture.png", mime="image/png", icon=":material/download:", key="mixture_png",
                       help="The mixture where the sliders last came to rest, decoded on the server.")


def _keep_alpha() -> None:
    """The browser's weights, where its sliders rest: kept (a2 at most 1 - a1, on the sliders' steps)."""
    alpha, _ = mapview.mixer_state(MIXER)
    if alpha is None:
        return
    a1 = min(max(round(alpha[0] / STEP) * STEP, 0.0), TOP)
    a2 = min(max(round(alpha[1] / STEP) * STEP, 0.0), round(1 - a1, 2))
    session.mixer_alpha = (round(a1, 2), round(a2, 2))
