"""CPU sweeps of the classical baselines: weighting the benchmark-like items (dev[:1250]) in TF-IDF + ridge, the ridge's alpha,
kNN's k, training on dev[:1250] alone, ridge on MiniLM embeddings, and label-shift weights (each training item weighted
by how much more common its price band is in dev[:1250] than in the whole pool). Scored on dev[1250:] (500 items).
Usage: python experiments/accuracy_sweeps.py [DATA_DIR]   (default ../shared/data/amazon)"""
import sys

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor

from pricer.data.items import read_items
from pricer.retrieval.embeddings import embed

D=sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon"
pool=read_items(f"{D}/train.jsonl"); devtr=read_items(f"{D}/dev.jsonl[:1250]"); test=read_items(f"{D}/dev.jsonl[1250:]")
yt=np.array([i.price for i in test])
def mae(p): return np.mean(np.abs(p-yt))
def tfidf(train, w, alpha=1.0):
    v=TfidfVectorizer(ngram_range=(1,2), min_df=2, sublinear_tf=True, strip_accents="unicode")
    X=v.fit_transform([i.text for i in train]); r=Ridge(alpha=alpha).fit(X, np.log1p([i.price for i in train]), sample_weight=w)
    return np.expm1(r.predict(v.transform([i.text for i in test])))
for wdev in [1,3,10]:
    for alpha in [0.5,1.0,2.0]:
        tr=pool+devtr; w=np.array([1.0]*len(pool)+[wdev]*len(devtr))
        print("tfidf wdev",wdev,"alpha",alpha, round(mae(tfidf(tr,w,alpha)),2))
print("tfidf dev only", round(mae(tfidf(devtr, None)),2))
E=embed([i.text for i in pool+devtr]); Et=embed([i.text for i in test])
y=np.log1p([i.price for i in pool+devtr])
for k in [5,10,20,40]:
    p=np.expm1(KNeighborsRegressor(n_neighbors=k, metric="cosine", weights="distance").fit(E,y).predict(Et)); print("knn",k,round(mae(p),2))
n=len(pool)
for k in [10,20]:
    p=np.expm1(KNeighborsRegressor(n_neighbors=k, metric="cosine", weights="distance").fit(E[n:],y[n:]).predict(Et)); print("knn devonly",k,round(mae(p),2))
# ridge on embeddings
for a in [1,3,10]:
    p=np.expm1(Ridge(alpha=a).fit(E,y,sample_weight=np.r_[np.ones(n),3*np.ones(len(devtr))]).predict(Et)); print("emb ridge w3",a,round(mae(p),2))
# label shift: weight = (share of the item's price band in dev[:1250] / its share in the training pool) ** power
edges=np.array([0,10,25,50,100,150,200,300,400,600,1000])
def band(v): return np.clip(np.searchsorted(edges,v,side="right")-1,0,len(edges)-2)
tr=pool+devtr; ytr=np.array([i.price for i in tr])
p_dev=np.bincount(band([i.price for i in devtr]),minlength=10)/len(devtr); p_all=np.bincount(band(ytr),minlength=10)/len(tr)
for power in [0.5,1.0]:
    w=(p_dev/p_all)[band(ytr)]**power
    print("tfidf label-shift power",power, round(mae(tfidf(tr,w/w.mean())),2))
# the same mix by subsampling instead of weights: every band cut to its share of dev[:1250] (drops most cheap items)
b=band(ytr); counts=np.bincount(b,minlength=10); n=int(np.min(counts[p_dev>0]/p_dev[p_dev>0])); rng=np.random.default_rng(42)
keep=np.concatenate([rng.choice(np.where(b==k)[0], int(round(p_dev[k]*n)), replace=False) for k in range(10) if p_dev[k]>0])
print("tfidf subsampled to dev's price mix,", len(keep), "items", round(mae(tfidf([tr[i] for i in keep], None)),2))
